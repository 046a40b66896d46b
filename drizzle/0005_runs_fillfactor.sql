-- Leave 15% of every runs page free, so a run's next row version can go on the same page: a
-- rename (Scheduled -> Late) is then a HOT update (no index entries), and a state change touches
-- one heap page instead of two. Applies to pages written from now on; no table rewrite.
ALTER TABLE "flowwarden"."runs" SET (fillfactor = 85);

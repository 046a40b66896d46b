"""The real django-celery-beat and Celery, driven by test/system/celery-beat.test.ts.

  python3 beat_helper.py create < tasks.json   # PeriodicTasks through the Django ORM, as an app would
  python3 beat_helper.py fires < cases.json    # Celery's own fire times (crontab.is_due) per case

One process per command: Django is set up once per call, the schema once per test file (migrate).
"""
import json
import os
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import django  # noqa: E402

django.setup()

from celery import Celery  # noqa: E402
from django_celery_beat.models import (  # noqa: E402
    ClockedSchedule, CrontabSchedule, IntervalSchedule, PeriodicTask, SolarSchedule)

app = Celery("flowwarden-test")
app.conf.timezone = os.environ.get("FW_CELERY_TIMEZONE", "UTC")
app.set_current()


def parse(ts):
    return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None


def create(tasks):
    for t in tasks:
        kw = {}
        if "crontab" in t:
            c = t["crontab"]
            kw["crontab"], _ = CrontabSchedule.objects.get_or_create(
                minute=c.get("minute", "*"), hour=c.get("hour", "*"), day_of_week=c.get("day_of_week", "*"),
                day_of_month=c.get("day_of_month", "*"), month_of_year=c.get("month_of_year", "*"),
                timezone=c.get("timezone", "UTC"))
        if "interval" in t:
            kw["interval"], _ = IntervalSchedule.objects.get_or_create(every=t["interval"]["every"], period=t["interval"]["period"])
        if "clocked" in t:
            kw["clocked"], _ = ClockedSchedule.objects.get_or_create(clocked_time=parse(t["clocked"]))
        if "solar" in t:
            kw["solar"], _ = SolarSchedule.objects.get_or_create(event=t["solar"], latitude=52.52, longitude=13.405)
        PeriodicTask.objects.create(
            name=t["name"], task=t["task"], args=json.dumps(t.get("args", [])), kwargs=json.dumps(t.get("kwargs", {})),
            queue=t.get("queue"), enabled=t.get("enabled", True), one_off=t.get("one_off", False),
            start_time=parse(t.get("start_time")), expires=parse(t.get("expires")),
            description=t.get("description", ""), **kw)
    print(json.dumps({"created": len(tasks)}))


def fires(cases):
    """Beat's loop over [from, until]: ask is_due(last_run_at); when due, the fire is now and
    last_run_at becomes now; otherwise sleep the `next` seconds Celery returns and ask again."""
    out = []
    for case in cases:
        c = case["crontab"]
        sched = CrontabSchedule(minute=c.get("minute", "*"), hour=c.get("hour", "*"),
                                day_of_week=c.get("day_of_week", "*"), day_of_month=c.get("day_of_month", "*"),
                                month_of_year=c.get("month_of_year", "*"), timezone=ZoneInfo(c.get("timezone", "UTC"))).schedule
        clock = {"now": parse(case["from"])}
        sched.nowfun = lambda: clock["now"].astimezone(sched.tz)
        until = parse(case["until"])
        last = clock["now"]
        got = []
        for _ in range(100000):
            due, nxt = sched.is_due(last)
            if due:
                got.append(clock["now"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
                last = clock["now"]
            # Beat sleeps `next` seconds but at most its max_interval (5 s for the DatabaseScheduler);
            # 60 s gives the same fires for minute-resolution crontabs from a minute-aligned start.
            clock["now"] = clock["now"] + timedelta(seconds=min(max(nxt, 1), 60))
            if clock["now"] > until:
                break
        out.append(got)
    print(json.dumps(out))


if __name__ == "__main__":
    data = json.load(sys.stdin)
    {"create": create, "fires": fires}[sys.argv[1]](data)

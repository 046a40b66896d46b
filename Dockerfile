# A flowwarden worker pod. Runs TypeScript sources directly on Node 24 (type stripping).
FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY src ./src
COPY drizzle ./drizzle
COPY bin ./bin
USER node
EXPOSE 8080
# Heap settings of a pod (the same as `npm start`): a small young generation and a capped old one keep
# a busy worker under ~150 MB RSS without costing throughput (docs/benchmarks.md, memory).
ENTRYPOINT ["node", "--max-semi-space-size=4", "--max-old-space-size=192", "bin/flowwarden.mjs"]
CMD ["start"]

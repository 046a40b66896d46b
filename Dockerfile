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
ENTRYPOINT ["node", "bin/flowwarden.mjs"]
CMD ["start"]

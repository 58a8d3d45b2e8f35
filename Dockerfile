# syntax=docker/dockerfile:1
# mirror-autoscaler container image.
#   docker build -t registry.example.com/platform/mirror-autoscaler:0.1.0 .
# Node.js 24 is an LTS line; bump NODE_IMAGE for a newer LTS (pin a digest in your registry if you need
# reproducible builds).
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, so source edits do not invalidate this layer. --ignore-scripts: `npm ci` would run the
# package's `prepare` script (the build) before the sources are copied in; no dependency needs an install
# script at run time.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
  && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
# Files stay owned by root and read-only to the runtime user: the process cannot modify its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# A numeric non-root user, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["run"]

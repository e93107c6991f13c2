# lifeboat as a container image, for the CronJobs `lifeboat schedule manifest` prints.
#
#   docker build -t lifeboat:0.1.0 .
#
# test/integration/image-layout.test.ts replays both stages without Docker and runs the CLI from the
# result; the replay supports the instructions used here (and says so when it meets another).
#
# Build stage: zstd-napi compiles its native addon (python3, make, g++ come with node:20).
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY bin ./bin
COPY src ./src
RUN npm run build && npm prune --omit=dev

# Runtime: production dependencies only, an unprivileged user, the CLI as entrypoint.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED=true
WORKDIR /app
COPY --from=build /src/package.json /src/oclif.manifest.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/bin ./bin
# node:20 images have the user "node" (uid 1000), which the generated CronJobs run as.
USER 1000:1000
ENTRYPOINT ["node", "/app/bin/run.js"]
CMD ["--help"]

# The runner of meshsim's simulated services, for `mesh export kubernetes`: each `simulate:`
# service becomes a Deployment of this image, its block in $MESH_SIMULATE and its calls
# going to $<DEP>_URL (the dependencies' Service names). Build it from the repository root:
#
#   docker build -f docker/simulated-service.Dockerfile -t meshsim-simulated-service:0.1.0 .
#
# (the tag `mesh export` assumes; another one is given with --runner-image), then push it
# where the cluster pulls from, or load it into a local one (kind load docker-image ...,
# minikube image load ...).

FROM node:20-slim AS build
WORKDIR /meshsim
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would run the whole build before the sources are here.
RUN npm ci --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

FROM node:20-slim
WORKDIR /meshsim
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /meshsim/dist ./dist
# In a pod the Service (and a sidecar) reach the runner at the pod's IP, not on loopback.
ENV MESH_LISTEN_HOST=0.0.0.0 PORT=8080
EXPOSE 8080
USER node
# It finishes in-flight requests on SIGTERM (terminationGracePeriodSeconds is stopGracePeriod).
ENTRYPOINT ["node", "dist/sim/model/simulated-service-main.js"]

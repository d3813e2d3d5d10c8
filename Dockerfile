# syntax=docker/dockerfile:1
#
# ChronoGuard sidecar image: the single NativeAOT binary `chronoguard` on a chiseled (distroless,
# shell-less, non-root) Ubuntu base.
#
# The build stage runs the same publish command that CI runs in .ci/run:
#     dotnet publish src/ChronoGuard.Sidecar -c Release -o artifacts
# with one property added, -p:ChronoGuardAotTfm=net<AOT_DOTNET_VERSION>. SPEC §2 and
# Directory.Build.props say why. The registry that the dev/CI machines can reach serves ILCompiler 9.0.x
# but not the .NET 10 NativeAOT runtime pack, so CI publishes net9.0. .NET 9 support ends on
# 2026-11-10, so this image is built where the full registry is reachable and publishes net10.0 (LTS).
# To build exactly what CI builds (net9.0 on a 9.0 base), run:
#     docker build --build-arg AOT_DOTNET_VERSION=9.0 -t chronoguard:ci .
#
# NOT BUILT HERE: the development machine has no Docker engine, so this file has been reviewed
# but never built or run. The first `docker build` should be watched, especially the restore
# layer and the runtime smoke test at the end of the build stage.
#
# Build:  docker build -t chronoguard:dev .
# Run:    docker run --rm -p 3128:3128 -p 9477:9477 \
#           -v "$PWD/examples:/etc/chronoguard:ro" \
#           -v chronoguard-audit:/var/lib/chronoguard/audit \
#           chronoguard:dev
#         Mount the policy's directory, not the file: editors and ConfigMaps replace the file
#         (write a new copy and rename it), and a single-file bind mount would keep the old inode,
#         so the policy watcher would never see the change.
#         CMD passes --policy, so the container stops at startup (exit 2, one line on stderr) if no
#         policy is mounted. The image ships no policy on purpose: a built-in example with a
#         published token hash would be an open door. For observe mode (allow all, audit all), run:
#           docker run ... chronoguard:dev run --listen 0.0.0.0:3128 --stats 0.0.0.0:9477 \
#             --audit-dir /var/lib/chronoguard/audit
#
# Architecture: NativeAOT compiles for the build machine's OS and architecture (the RID comes from
# the SDK), so the build stage deliberately has no --platform=$BUILDPLATFORM. With
# `docker buildx build --platform linux/arm64`, the build stage runs as arm64 (natively, or under
# QEMU, which is slow) and produces an arm64 binary.
#
# Both stages are Ubuntu 24.04 "noble". The binary links against the build stage's glibc, which must
# not be newer than the runtime's. `sdk:10.0` is the same noble image today; the explicit tag keeps
# the two from drifting apart. Pin both by digest for production builds (Renovate/Dependabot).

ARG AOT_DOTNET_VERSION=10.0

# ---------------------------------------------------------------------------------------------
FROM mcr.microsoft.com/dotnet/sdk:10.0-noble AS build
ARG AOT_DOTNET_VERSION

# NativeAOT prerequisites: clang links the native binary, zlib1g-dev is a link-time dependency, and
# llvm provides llvm-objcopy for StripSymbols=true. These are the packages of Microsoft's own
# sdk:10.0-noble-aot image, which could replace this step.
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang llvm zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Restore in its own layer, keyed only on the files that decide the package graph, so editing a .cs
# file does not download packages again. The project files switch TargetFramework on _IsPublishing
# (which `dotnet publish` sets). With PublishAot, the SDK also infers the RuntimeIdentifier from it.
# Setting it here makes this restore produce the same assets as the publish below, which then
# restores again as a no-op. If a nuget.config, global.json or Directory.Packages.props is added
# to the repo, copy it here too.
COPY Directory.Build.props ./
COPY src/ChronoGuard/ChronoGuard.csproj src/ChronoGuard/
COPY src/ChronoGuard.Sidecar/ChronoGuard.Sidecar.csproj src/ChronoGuard.Sidecar/
RUN dotnet restore src/ChronoGuard.Sidecar \
        -p:_IsPublishing=true -p:ChronoGuardAotTfm=net${AOT_DOTNET_VERSION}

COPY src/ src/

# The CI publish command (.ci/run), writing to /artifacts; only the AOT framework is passed in.
RUN dotnet publish src/ChronoGuard.Sidecar -c Release -o /artifacts \
        -p:ChronoGuardAotTfm=net${AOT_DOTNET_VERSION} \
    && test -x /artifacts/chronoguard \
    && /artifacts/chronoguard --version

# The audit directory must exist in the image and belong to the app user. Otherwise a fresh Docker
# volume mounted there is created root-owned, and the non-root process cannot write its log. The
# chiseled runtime image has no shell to mkdir with, so the tree is staged here.
RUN mkdir -p /rootfs/var/lib/chronoguard/audit

# ---------------------------------------------------------------------------------------------
# runtime-deps "chiseled-extra", not plain "chiseled": the project sets InvariantGlobalization=false
# (IDN/punycode host names), so the runtime needs libicu, and time windows resolve IANA zones such as
# "Europe/Berlin" through TimeZoneInfo, which needs tzdata. Plain chiseled has neither: the binary
# would stop at startup ("Couldn't find a valid ICU package"), and policies with a timezone would be
# rejected. The extra variant also has libssl and ca-certificates, which a self-contained NativeAOT
# binary needs.
FROM mcr.microsoft.com/dotnet/runtime-deps:${AOT_DOTNET_VERSION}-noble-chiseled-extra AS runtime

LABEL org.opencontainers.image.title="chronoguard" \
      org.opencontainers.image.description="ChronoGuard: egress-control HTTP proxy sidecar for AI agents (NativeAOT)"

WORKDIR /app

# Only the binary (not the stripped-off chronoguard.dbg symbols). It stays root-owned, so the
# process cannot modify its own executable.
COPY --from=build /artifacts/chronoguard /app/chronoguard
COPY --from=build --chown=1654:1654 /rootfs/var/lib/chronoguard/ /var/lib/chronoguard/

# The chiseled base already runs as "app" (uid 1654). Give it numerically so Kubernetes'
# runAsNonRoot can verify it without a runAsUser.
USER 1654

# 3128: the proxy (HTTPS_PROXY/HTTP_PROXY). 9477: stats (/metrics, /stats, /healthz, /readyz, /audit/head).
EXPOSE 3128 9477

# The policy is a mounted file (a ConfigMap directory in Kubernetes). It is re-read when it changes
# and on SIGHUP.
# The audit log (FASTER, hash-chained) must outlive the container, so it is a volume.
VOLUME ["/var/lib/chronoguard/audit"]

# SIGTERM drains: the listener closes, and tunnels in flight get Proxy:DrainTimeoutMs (15 s by
# default) before they are closed; then the process exits 0. Give `docker stop -t` more than that.
STOPSIGNAL SIGTERM

# The chiseled image has no shell or curl, so the binary probes itself: `chronoguard healthcheck`
# GETs /readyz (listening, policy loaded, audit writer healthy) on the stats port and exits 0 on 200.
# Kubernetes probes /readyz and /healthz with httpGet instead (deploy/kubernetes/).
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
    CMD ["/app/chronoguard", "healthcheck", "--stats", "127.0.0.1:9477", "--path", "/readyz"]

ENTRYPOINT ["/app/chronoguard"]
# In a container the listeners bind 0.0.0.0 so that `docker run -p` works. In a Kubernetes pod,
# override the args to keep the proxy on 127.0.0.1 (see deploy/kubernetes/deployment.yaml).
CMD ["run", "--listen", "0.0.0.0:3128", "--stats", "0.0.0.0:9477", "--policy", "/etc/chronoguard/policy.json", "--audit-dir", "/var/lib/chronoguard/audit"]

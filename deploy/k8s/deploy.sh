#!/usr/bin/env bash
# Deploy hatbot to one environment: pin the image and the model version on top of
# an overlay, apply it, wait for the rollout, and undo the rollout if it fails.
#
#   deploy/k8s/deploy.sh staging|production [--render]
#
# --render prints the manifests that would be applied and touches no cluster.
#
# Environment (CI sets these from its variables; see docs/LIFECYCLE.md):
#   IMAGE_NAME               the image's registry path, e.g. $CI_REGISTRY_IMAGE/hatbot (required)
#   IMAGE_TAG                its tag: the commit SHA (required)
#   IMAGE_DIGEST             the image's digest (sha256:...), what CI deploys: the pods then
#                            run exactly the bits built for the commit, whatever the tag says
#   MODEL_VERSION            the model version to serve; empty: the pointer's, read at pod start
#   MODEL_STORE_URL          base URL of the model store (required to apply)
#   MODEL_STORE_READ_HEADER  'Name: value' header giving the cluster read access to the store
#   REGISTRY_SERVER, REGISTRY_USER, REGISTRY_PASSWORD
#                            an image pull secret for a private registry (all three, or none)
#   ROLLOUT_TIMEOUT          how long to wait for the rollout (default 10m)
#   KUBECTL                  the kubectl to run (default kubectl; its KUBECONFIG chooses the cluster)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kubectl="${KUBECTL:-kubectl}"

usage() { sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
die() { echo "deploy.sh: $*" >&2; exit 2; }

env="${1:-}"
mode="${2:-apply}"
case "$env" in staging | production) ;; *) usage; die "unknown environment '${env}'" ;; esac
case "$mode" in apply | --render) ;; *) usage; die "unknown option '${mode}'" ;; esac

: "${IMAGE_NAME:?set IMAGE_NAME, e.g. \$CI_REGISTRY_IMAGE/hatbot}"
: "${IMAGE_TAG:?set IMAGE_TAG, e.g. \$CI_COMMIT_SHA}"
MODEL_VERSION="${MODEL_VERSION:-}"
MODEL_STORE_URL="${MODEL_STORE_URL:-}"

# These values go into YAML: accept only what they can legitimately be.
[[ "$IMAGE_NAME" =~ ^[a-z0-9]([a-z0-9._:/-]*[a-z0-9])?$ ]] || die "bad IMAGE_NAME '${IMAGE_NAME}'"
[[ "${IMAGE_NAME##*/}" == hatbot ]] || die "IMAGE_NAME must end in /hatbot, not '${IMAGE_NAME}'"
[[ "$IMAGE_TAG" =~ ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$ ]] || die "bad IMAGE_TAG '${IMAGE_TAG}'"
IMAGE_DIGEST="${IMAGE_DIGEST:-}"
[[ -z "$IMAGE_DIGEST" || "$IMAGE_DIGEST" =~ ^sha256:[0-9a-f]{64}$ ]] || die "bad IMAGE_DIGEST '${IMAGE_DIGEST}'"
[[ -z "$MODEL_VERSION" || "$MODEL_VERSION" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$ ]] ||
  die "bad MODEL_VERSION '${MODEL_VERSION}'"
[[ "$MODEL_STORE_URL" =~ ^[^[:space:]\"\'\\]*$ ]] || die "bad MODEL_STORE_URL"

overlay="$here/overlays/$env"
namespace="$(awk '$1 == "namespace:" {print $2; exit}' "$overlay/kustomization.yaml")"
[ -n "$namespace" ] || die "$overlay/kustomization.yaml sets no namespace"

# A throwaway kustomization on top of the overlay (kustomize wants it below deploy/k8s).
work="$(mktemp -d "$here/.deploy-$env.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cat >"$work/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $namespace
resources:
  - ../overlays/$env
images:
  - name: hatbot
    newName: "$IMAGE_NAME"
$(if [ -n "$IMAGE_DIGEST" ]; then echo "    digest: \"$IMAGE_DIGEST\""; else echo "    newTag: \"$IMAGE_TAG\""; fi)
configMapGenerator:
  - name: hatbot-config
    behavior: merge
    literals:
      - "MODEL_VERSION=$MODEL_VERSION"
      - "MODEL_STORE_URL=$MODEL_STORE_URL"
EOF
"$kubectl" kustomize "$work" >"$work/manifests.yaml"

if [ "$mode" = --render ]; then
  cat "$work/manifests.yaml"
  exit 0
fi

[ -n "$MODEL_STORE_URL" ] || die "set MODEL_STORE_URL: the pods fetch their model from it"
model="${MODEL_VERSION:-whatever the pointer names at pod start}"
echo "deploying ${IMAGE_NAME}:${IMAGE_TAG}${IMAGE_DIGEST:+@$IMAGE_DIGEST} with model ${model} to namespace ${namespace}"

# Secrets come from CI variables at deploy time, never from the repository.
if [ -n "${REGISTRY_USER:-}" ] && [ -n "${REGISTRY_PASSWORD:-}" ]; then
  "$kubectl" -n "$namespace" create secret docker-registry hatbot-registry \
    --docker-server="${REGISTRY_SERVER:?set REGISTRY_SERVER with REGISTRY_USER}" \
    --docker-username="$REGISTRY_USER" --docker-password="$REGISTRY_PASSWORD" \
    --dry-run=client -o yaml | "$kubectl" apply -f -
fi
if [ -n "${MODEL_STORE_READ_HEADER:-}" ]; then
  "$kubectl" -n "$namespace" create secret generic hatbot-model-store \
    --from-literal=header="$MODEL_STORE_READ_HEADER" \
    --dry-run=client -o yaml | "$kubectl" apply -f -
fi

"$kubectl" apply -f "$work/manifests.yaml"

if ! "$kubectl" -n "$namespace" rollout status deployment/hatbot --timeout="${ROLLOUT_TIMEOUT:-10m}"; then
  echo "rollout of ${IMAGE_NAME}:${IMAGE_TAG} failed; what the pods say:" >&2
  "$kubectl" -n "$namespace" get pods -l app.kubernetes.io/name=hatbot -o wide >&2 || true
  for pod in $("$kubectl" -n "$namespace" get pods -l app.kubernetes.io/name=hatbot \
    --field-selector=status.phase!=Running -o name 2>/dev/null); do
    "$kubectl" -n "$namespace" logs "$pod" --all-containers --tail=50 >&2 || true
  done
  # The old pods kept serving (maxUnavailable 0); go back to them.
  echo "undoing the rollout" >&2
  "$kubectl" -n "$namespace" rollout undo deployment/hatbot >&2
  "$kubectl" -n "$namespace" rollout status deployment/hatbot --timeout="${ROLLOUT_TIMEOUT:-10m}" >&2 || true
  exit 1
fi
echo "deployed: $("$kubectl" -n "$namespace" get deployment/hatbot \
  -o jsonpath='{.spec.template.spec.containers[0].image}')"

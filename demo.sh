#!/usr/bin/env bash
# The main job (for now): the SDK's outage demo against a real broker; see
# examples/ue-track/outage-demo.sh. The whole-pipeline demo replaces it once the sink lands.
set -euo pipefail
exec "$(dirname "$0")/examples/ue-track/outage-demo.sh" "$@"

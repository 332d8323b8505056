#!/usr/bin/env bash
# Mutation check (`make mutate`, not in CI): mutmut over the domain with its unit tests, and over
# the SQS handlers with their tests on moto. mutmut expects the code under src/, so each pass
# runs in a scratch copy of the tree (MUTATE_DIR) with the packages laid out there.
#
#   tests/mutation/run.sh domain|handlers [MUTATE_DIR]    then: cd MUTATE_DIR/<pass> && mutmut results
#   MUTATE_ONLY narrows the domain pass to some modules (mutmut's only_mutate globs).
#   MUTANTS runs only the mutants named (space-separated globs), e.g. the survivors of a pass before a fix.
set -euo pipefail
pass="${1:?domain or handlers}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${2:-${MUTATE_DIR:-/tmp/dozor-mutate}}/$pass"
mutmut="$root/.venv/bin/mutmut"

case "$pass" in
  domain)
    only=${MUTATE_ONLY:-'"src/dozor/domain/*"'}  # e.g. MUTATE_ONLY='"src/dozor/domain/parcels/*"'
    tests='"tests/unit/shared/test_aggregates.py", "tests/unit/fraud/test_features.py", "tests/unit/shared/test_first_seen.py",
      "tests/unit/fraud/test_rules_and_decisions.py", "tests/unit/fraud/test_explanations.py", "tests/unit/shared/test_privacy.py",
      "tests/unit/fraud/test_scoring_service.py", "tests/unit/fraud/test_shadow_scoring.py", "tests/unit/parcels/test_shipments.py",
      "tests/unit/parcels/test_lanes.py", "tests/unit/parcels/test_alerts.py", "tests/unit/parcels/test_parcel_model.py"' ;;
  handlers)
    only='"src/dozor/handlers/fraud/order_events.py", "src/dozor/handlers/fraud/feedback.py",
      "src/dozor/handlers/parcels/shipment_events.py", "src/dozor/handlers/records.py"'
    tests='"tests/integration/fraud/test_order_events_queue.py", "tests/integration/fraud/test_feedback.py",
      "tests/integration/parcels/test_shipment_events.py", "tests/integration/fraud/test_queue_parity.py",
      "tests/integration/fraud/test_order_scoring.py::test_batch_sees_earlier_orders_of_the_same_batch",
      "tests/unit/shared/test_records.py"' ;;
  *) echo "unknown pass $pass (domain or handlers)" >&2; exit 2 ;;
esac

# The committed tree (HEAD), not the work tree: a half-made edit would fail the clean run mutmut
# starts with. MUTATE_REF picks another commit, e.g. the one before a fix, for a before/after score.
rm -rf "$work" && mkdir -p "$work/src" "$work/tree"
git -C "$root" archive "${MUTATE_REF:-HEAD}" functions/dozor models/dozor_training infra/dozor_local tests events template.yaml \
  | tar -x -C "$work/tree"
mv "$work/tree/functions/dozor" "$work/tree/models/dozor_training" "$work/tree/infra/dozor_local" "$work/src/"
mv "$work/tree/tests" "$work/tree/events" "$work/tree/template.yaml" "$work/" && rm -rf "$work/tree"
find "$work" -name __pycache__ -prune -exec rm -rf {} +
# The repository's pytest settings, and where mutmut mutates and which tests judge it.
"$root/.venv/bin/python" - "$root/pyproject.toml" "$work/pyproject.toml" "$only" "$tests" <<'PY'
import json, sys, tomllib
source, target, only, tests = sys.argv[1:]
pytest = tomllib.loads(open(source).read())["tool"]["pytest"]["ini_options"]
lines = ["[tool.pytest.ini_options]"]
lines += [f"{key} = {json.dumps(value)}" for key, value in pytest.items() if key != "testpaths"]  # JSON strings are TOML
lines += ["", "[tool.mutmut]", 'source_paths = ["src"]',
          'also_copy = ["template.yaml", "events"]',  # the local stack's tests deploy the template
          # Workers fork from a clean server, not from the process that ran the suite: moto's and the
          # local stack's threads hold locks at fork time, and every forked mutant then hangs.
          'process_isolation = "forkserver"',
          f"only_mutate = [{only}]",
          f"pytest_add_cli_args_test_selection = [{tests}]", 'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q"]']
open(target, "w").write("\n".join(lines) + "\n")
PY
cd "$work"
# shellcheck disable=SC2086  # MUTANTS is a list of globs, split on purpose
nice -n 19 "$mutmut" run --max-children 1 ${MUTANTS:-}
"$mutmut" results --all true > results.txt || true
echo "mutants: $(grep -c ': ' results.txt)  $(cut -d: -f2 results.txt | sort | uniq -c | tr '\n' ' ')"

#!/usr/bin/env bash
# Smoke check of the frozen GANAD Clinic (`make installer-check`, run by .ci/run after the tests):
# runs the built executables the way a lab would, with no Python and no source tree involved, in a
# throw-away user account-like folder (HOME, XDG_* set to a temporary directory).
#
#   installer/smoke_check.sh [DIST_FOLDER]        # default dist/ganad
#
# Checks: `ganad --version` (and `ganad-app` = `ganad app` where it is built); the data folder is
# --home, else $GANAD_HOME, else platformdirs' user data folder, as for the installed package;
# `ganad demo --quick` headless (train, register, watch, score, report) and what it wrote; the
# Alembic migrations, the model registry and a model bundle read back; the desktop app offscreen for a few seconds; PostgreSQL through the
# bundled driver when $GANAD_TEST_PG_URL names a database. Any problem: a message and exit 1.
#
# SMOKE_GUI_SECONDS (default 10): how long the window must stay up; SMOKE_THREADS (default 1): torch
# threads for the demo; SMOKE_KEEP=1 keeps the temporary folder.
set -uo pipefail

dist="$(cd "${1:-dist/ganad}" 2>/dev/null && pwd)" || { echo "smoke check: no folder ${1:-dist/ganad}; run make installer" >&2; exit 1; }
ganad="$dist/ganad"
gui_seconds="${SMOKE_GUI_SECONDS:-10}"
threads="${SMOKE_THREADS:-1}"
passed=0
failed=0

work="$(mktemp -d "${TMPDIR:-/tmp}/ganad-smoke.XXXXXX")"
app_pid=""
cleanup() {
    if [ -n "$app_pid" ] && kill -0 "$app_pid" 2>/dev/null; then kill -KILL "$app_pid" 2>/dev/null; fi
    if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke check: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# A clean user: nothing from the developer's environment or the source tree can help the frozen app.
export HOME="$work/user" XDG_DATA_HOME="$work/user/data" XDG_CONFIG_HOME="$work/user/config" \
       XDG_CACHE_HOME="$work/user/cache" XDG_RUNTIME_DIR="$work/user/run"
unset GANAD_HOME GANAD_DB PYTHONPATH PYTHONHOME PYTHONSTARTUP VIRTUAL_ENV QT_PLUGIN_PATH
mkdir -p "$HOME" "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
cd "$work" || exit 1

ok() { passed=$((passed + 1)); echo "ok   $*"; }
fail() {
    failed=$((failed + 1))
    echo "FAIL $1" >&2
    [ -n "${2:-}" ] && [ -f "$2" ] && { echo "---- last lines of $2:" >&2; tail -n 40 "$2" >&2; echo "----" >&2; }
    finish
}
finish() {
    echo "smoke: $passed passed, $failed failed"
    [ "$failed" = 0 ] && exit 0
    echo "smoke check of $dist FAILED" >&2
    exit 1
}
# run NAME SECONDS COMMAND...: output to $work/NAME.log; fails on a non-zero exit or a traceback.
run() {
    local name="$1" seconds="$2"; shift 2
    local log="$work/$name.log"
    timeout --kill-after=10 "$seconds" "$@" >"$log" 2>&1
    local rc=$?
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && fail "$name: still running after ${seconds}s: $*" "$log"
    [ "$rc" = 0 ] || fail "$name: exit $rc: $*" "$log"
    grep -q "^Traceback" "$log" && fail "$name: printed a traceback: $*" "$log"
    return 0
}
need_file() { [ -s "$1" ] || fail "$2: no $1" "${3:-}"; }

[ -x "$ganad" ] || fail "no executable $ganad"
echo "smoke check of $dist ($(du -sh "$dist" | cut -f1)) in $work"
# read through their __file__ by the package and reportlab: must be there as files
for file in ganad_clinic/store/migrations/env.py ganad_clinic/store/migrations/versions/0001_initial.py \
            ganad_clinic/store/migrations/versions/0002_score_tiling.py \
            ganad_clinic/store/migrations/versions/0003_tamper_evidence.py \
            ganad_clinic/store/migrations/versions/0004_cells.py \
            ganad_clinic/store/migrations/versions/0005_operating_point.py \
            ganad_clinic/store/migrations/versions/0006_review_withdrawals.py \
            ganad_clinic/store/migrations/versions/0007_specimens_users_signatures.py \
            ganad_clinic/store/migrations/versions/0008_stations_and_claims.py \
            resources/icon.png reportlab/fonts/Vera.ttf reportlab/fonts/VeraBd.ttf; do
    [ -f "$dist/_internal/$file" ] || fail "not bundled: _internal/$file"
done
ok "migrations, icon and report fonts bundled as files"

# 1. the command line starts
run version 120 "$ganad" --version
grep -Eq "^ganad [0-9]+\.[0-9]+" "$work/version.log" || fail "version: unexpected output" "$work/version.log"
ok "ganad --version: $(cat "$work/version.log")"

if [ -x "$dist/ganad-app" ]; then  # the window without a console: Windows and macOS builds only
    run app-help 120 "$dist/ganad-app" --help
    grep -q "ganad app" "$work/app-help.log" || fail "ganad-app --help is not the help of ganad app" "$work/app-help.log"
    ok "ganad-app runs ganad app"
fi

# 2. the data folder: platformdirs by default, else $GANAD_HOME, as for the installed package
run default-home 120 "$ganad" db upgrade
need_file "$XDG_DATA_HOME/ganad-clinic/ganad.db" "default data folder (platformdirs)" "$work/default-home.log"
GANAD_HOME="$work/env-home" run env-home 120 "$ganad" db upgrade
need_file "$work/env-home/ganad.db" "GANAD_HOME" "$work/env-home.log"
ok "data folder: \$XDG_DATA_HOME/ganad-clinic by default, \$GANAD_HOME when set; migrations applied"

# 3. the whole flow headless
start=$SECONDS
run demo 1500 "$ganad" demo --quick --workdir "$work/demo" --home "$work/home" --threads "$threads"
for file in report.pdf report.csv demo-results.csv; do need_file "$work/demo/$file" "demo" "$work/demo.log"; done
[ "$(head -c 5 "$work/demo/report.pdf")" = "%PDF-" ] || fail "demo: report.pdf is not a PDF" "$work/demo.log"
need_file "$work/home/ganad.db" "demo --home" "$work/demo.log"
grep -q "^report: " "$work/demo.log" || fail "demo: no report line" "$work/demo.log"
grep -q "AUC" "$work/demo.log" || fail "demo: no AUC line" "$work/demo.log"
ok "ganad demo --quick in $((SECONDS - start)) s: $(grep "^report: " "$work/demo.log")"

# 4. what the demo left is read back: schema, model registry, a model bundle
run db-current 120 "$ganad" db current --home "$work/home"
grep -q "up to date" "$work/db-current.log" || fail "db current: database not at head" "$work/db-current.log"
run db-verify 120 "$ganad" db verify --home "$work/home"
run models 120 "$ganad" models list --home "$work/home"
grep -q "1.0.0" "$work/models.log" || fail "models list: model 1.0.0 not registered" "$work/models.log"
metadata="$(find "$work/home" -path "*/configs/metadata.json" -print -quit)"
[ -n "$metadata" ] || fail "no model bundle in $work/home" "$work/models.log"
slide="$(find "$work/demo" -name "Im*_1.tif" -print -quit)"
[ -n "$slide" ] || fail "no demo slide to score" "$work/demo.log"
run score 300 "$ganad" score --bundle "$(dirname "$(dirname "$metadata")")" "$slide" --json --threads "$threads"
grep -q "$(basename "$slide")" "$work/score.log" || fail "score: no result for $slide" "$work/score.log"
ok "database at head and verified, model 1.0.0 registered, its bundle loads and scores a slide"

# 4b. a specimen reviewed by the demo's technician and signed off by its supervisor: the HL7 and FHIR
#     libraries (hl7apy loads its version's structures by name) and argon2 work frozen
image="$(find "$work/demo/inbox" -name "Im*.tif" -print -quit)"
[ -n "$image" ] || fail "no demo image in the inbox to review" "$work/demo.log"
password() { awk -F '\t' -v user="$1" '$1 == user {print $3}' "$work/demo/demo-users.txt"; }
password demo-tech | run review 120 "$ganad" review "$image" --decision anomaly --user demo-tech --password-stdin \
    --home "$work/home"
mkdir -p "$work/outbox"
accession="$(basename "$image" .tif)"
password demo-supervisor | run signoff 300 "$ganad" signoff "$accession" --outbox "$work/outbox" \
    --user demo-supervisor --password-stdin --home "$work/home"
ls "$work/outbox"/*.hl7 >/dev/null 2>&1 || fail "signoff: no HL7 message in the outbox" "$work/signoff.log"
ls "$work/outbox"/*.fhir.json >/dev/null 2>&1 || fail "signoff: no FHIR report in the outbox" "$work/signoff.log"
grep -q "^OBR" <(tr '\r' '\n' < "$(ls "$work/outbox"/*.hl7 | head -1)") || fail "signoff: the HL7 message has no OBR" "$work/signoff.log"
ok "specimen $accession reviewed and signed off; ORU^R01 and DiagnosticReport in the outbox"

# 5. the desktop app, offscreen, on the demo's data folder: the window opens the database and starts
#    the screening service, which loads the active model; then it must stay up for a while
export QT_QPA_PLATFORM=offscreen
log="$work/app.log"
# signed in as the demo's technician (the demo wrote its users' passwords beside its results)
awk -F '\t' '$1 == "demo-tech" {print $3}' "$work/demo/demo-users.txt" |
    "$ganad" app --home "$work/home" --threads "$threads" --user demo-tech --password-stdin >"$log" 2>&1 &
app_pid=$!
start=$SECONDS
until grep -q "scoring with model 1.0.0" "$log"; do
    kill -0 "$app_pid" 2>/dev/null || { wait "$app_pid"; fail "app: exited (status $?) before its screening service loaded the model" "$log"; }
    [ $((SECONDS - start)) -gt 180 ] && fail "app: the screening service did not load the model within 180 s" "$log"
    sleep 1
done
opened=$((SECONDS - start))
sleep "$gui_seconds"
kill -0 "$app_pid" 2>/dev/null || { wait "$app_pid"; fail "app: exited (status $?) within ${gui_seconds}s of starting" "$log"; }
kill -TERM "$app_pid"
wait "$app_pid" 2>/dev/null
app_pid=""
if grep -Eq "^Traceback|Something went wrong| ERROR |unexpected error" "$log"; then fail "app: an error was logged" "$log"; fi
ok "ganad app (offscreen) up in ${opened} s (database open, model loaded), then ${gui_seconds} s more without an error"

# 6. PostgreSQL through the bundled driver, when CI provides a database
if [ -n "${GANAD_TEST_PG_URL:-}" ]; then
    timeout 120 "$ganad" db current --db "$GANAD_TEST_PG_URL" >"$work/pg.log" 2>&1
    grep -q "is at revision" "$work/pg.log" || fail "PostgreSQL: the frozen app cannot read $GANAD_TEST_PG_URL" "$work/pg.log"
    ok "PostgreSQL through the bundled psycopg: $(head -1 "$work/pg.log")"
fi

finish

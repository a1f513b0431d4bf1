#!/usr/bin/env bash
# A throwaway Redmine 5.0 (Debian packages `redmine` + `redmine-sqlite`, SQLite, WEBrick) for the
# ticket-system tests, on 127.0.0.1 only. Needs root (Debian looks instances up under /var/lib/redmine).
#   scripts/redmine-test.sh start DIR PORT   create, migrate and seed an instance in DIR; start it on PORT
#   scripts/redmine-test.sh stop DIR         stop it and remove DIR and its instance link
# `start` prints one JSON line last: url, api keys, the seeded issue ids and the Tenant field id.
#
# Seeded: REST API on, login required (so a bad API key is 401, not anonymous access); users alice
# and bob (alice@example.test, bob@example.test: the dev IdP's users) and imp-broker (the broker's
# own account); project acme (the broker is a Reporter: it may view issues and add notes) and
# project quiet (the broker may edit issues but not add notes: Redmine answers its PUT with 204 and
# saves nothing);
# an issue custom field "Tenant"; issues: open/alice/acme, closed/alice/acme, open/bob/acme,
# open/alice/globex, open/alice/acme in project quiet. alice and bob show their e-mail address to
# other members (Redmine hides it from non-admins by default), so the broker can match assignees.
# Quirks (after ../shared recipe): Ruby 3.1 has no default webrick and Bundler hides Debian's gem
# unless a Gemfile names it, so the instance has a private Gemfile; Token's before_create randomises
# the value, so API keys are pinned with update_column.
set -euo pipefail

cmd=${1:-}
DIR=${2:?usage: redmine-test.sh start DIR PORT | stop DIR}
INSTANCE=imp-test-$(basename "$DIR")
LINK=/var/lib/redmine/$INSTANCE
INST=$DIR/instance
PIDFILE=$INST/tmp/server.pid

stop() {
  if [ -s "$PIDFILE" ]; then
    local pid
    pid=$(cat "$PIDFILE")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$LINK"
  case "$DIR" in /tmp/* | "${TMPDIR:-/tmp}"/*) rm -rf "$DIR" ;; esac
}

start() {
  local port=${3:?port}
  mkdir -p "$INST"/{config,db,files,log,tmp,public/plugin_assets}
  ln -sfn "$INST" "$LINK"
  cat >"$INST/config/database.yml" <<EOF
production:
  adapter: sqlite3
  database: $INST/db/redmine.sqlite3
  pool: 5
  timeout: 5000
EOF
  ruby -rsecurerandom -e 'puts SecureRandom.hex(32)' >"$INST/config/secret_key.txt"
  cat >"$INST/Gemfile" <<'EOF'
eval_gemfile '/usr/share/redmine/Gemfile'
gem 'webrick'
EOF
  # The default data (roles, trackers, statuses) loads in the seed's Rails boot: each boot costs seconds.
  cat >"$INST/seed.rb" <<'EOF'
require 'json'
require 'securerandom'
Redmine::DefaultData::Loader.load('en')
Setting.rest_api_enabled = '1'
Setting.login_required = '1'
# No e-mail: each new issue would queue a notification job on a background thread that reads the
# SQLite file while the seed goes on writing (a seed once failed inside Issue#save! under load).
Setting.notified_events = []
ActionMailer::Base.perform_deliveries = false
def key_for(user)
  tok = Token.find_by(user_id: user.id, action: 'api') || Token.create!(user: user, action: 'api')
  value = SecureRandom.hex(20)
  tok.update_column(:value, value)
  value
end
def person(login, first, mail)
  User.find_by_login(login) || User.new.tap do |u|
    u.login = login; u.firstname = first; u.lastname = 'Example'; u.mail = mail
    u.password = u.password_confirmation = "#{login}-password-123"; u.status = User::STATUS_ACTIVE
    u.save!
    # Redmine hides e-mail addresses from non-admins by default; the broker matches assignees by e-mail.
    u.pref.hide_mail = false
    u.pref.save!
  end
end
admin = User.find_by_login('admin')
admin.update_columns(must_change_passwd: false)
alice = person('alice', 'Alice', 'alice@example.test')
bob = person('bob', 'Bob', 'bob@example.test')
broker = person('imp-broker', 'Imp', 'imp-broker@example.test')
tenant = IssueCustomField.create!(name: 'Tenant', field_format: 'string', is_for_all: true,
  is_filter: true, visible: true, trackers: Tracker.all.to_a)
developer = Role.find_by(name: 'Developer')
reporter = Role.find_by(name: 'Reporter')
# May edit issues but not add notes: Redmine then drops a note silently and still answers 204.
no_notes = Role.create!(name: 'Editor without notes', assignable: false, permissions: [:view_issues, :edit_issues])
def project(identifier, name)
  Project.create!(name: name, identifier: identifier, is_public: false,
    enabled_module_names: %w[issue_tracking], trackers: Tracker.all.to_a)
end
acme = project('acme', 'Acme')
quiet = project('quiet', 'Quiet')
[acme, quiet].each do |p|
  Member.create!(project: p, principal: alice, role_ids: [developer.id])
  Member.create!(project: p, principal: bob, role_ids: [developer.id])
end
Member.create!(project: acme, principal: broker, role_ids: [reporter.id])
Member.create!(project: quiet, principal: broker, role_ids: [no_notes.id])
closed = IssueStatus.where(is_closed: true).order(:position).first
def issue(project, subject, assignee, tenant_field, tenant, admin, status = nil)
  Issue.new.tap do |i|
    i.project = project; i.tracker = project.trackers.first; i.author = admin; i.assigned_to = assignee
    i.subject = subject; i.priority = IssuePriority.default || IssuePriority.first
    i.custom_field_values = { tenant_field.id.to_s => tenant }
    i.status = status if status
    i.save!
  end.id
end
puts JSON.generate(
  admin_key: key_for(admin), broker_key: key_for(broker), alice_key: key_for(alice), bob_key: key_for(bob),
  tenant_field_id: tenant.id, closed_status: closed.name,
  issues: {
    open: issue(acme, 'Acme cannot export invoices', alice, tenant, 'acme', admin),
    closed: issue(acme, 'Old acme question', alice, tenant, 'acme', admin, closed),
    bobs: issue(acme, 'Acme login loop', bob, tenant, 'acme', admin),
    globex: issue(acme, 'Globex dashboard is slow', alice, tenant, 'globex', admin),
    quiet: issue(quiet, 'Acme billing (broker may not add notes)', alice, tenant, 'acme', admin),
  })
EOF
  (
    cd /usr/share/redmine
    export REDMINE_INSTANCE=$INSTANCE RAILS_ENV=production BUNDLE_GEMFILE=$INST/Gemfile
    bundle lock --local >/dev/null
    # SCHEMA: db:migrate dumps the schema, by default into /usr/share/redmine/db; keep it in the instance.
    SCHEMA=$INST/db/schema.rb bin/rake db:migrate >"$INST/log/migrate.log"
    bin/rails runner "$INST/seed.rb" >"$INST/seed.json"
    rm -f "$PIDFILE"
    nohup setsid bin/rails server -b 127.0.0.1 -p "$port" -e production -P "$PIDFILE" \
      >"$INST/log/server.out" 2>&1 </dev/null &
  )
  local url=http://127.0.0.1:$port
  local deadline=$((SECONDS + 150)) # WEBrick boots in seconds, but minutes on a machine under load
  while [ "$SECONDS" -lt "$deadline" ]; do
    [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$url/login")" = 200 ] && break
    if [ -s "$PIDFILE" ] && ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then break; fi # it died
    sleep 0.1
  done
  if ! { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }; then
    echo "redmine failed to start:" >&2
    tail -n 30 "$INST/log/server.out" >&2
    exit 1
  fi
  ruby -rjson -e 'puts JSON.generate(JSON.parse(File.read(ARGV[0])).merge(url: ARGV[1]))' \
    "$INST/seed.json" "$url"
}

case "$cmd" in
  start) start "$@" ;;
  stop) stop ;;
  *) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac

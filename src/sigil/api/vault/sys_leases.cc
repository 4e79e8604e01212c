// api/vault/sys_leases.cc: sys/leases (leases/leases.h): lookup, list (sudo), renew, revoke,
// revoke-prefix and revoke-force (sudo), tidy; and the legacy sys/renew, sys/revoke,
// sys/revoke-prefix, sys/revoke-force. Token leases are renewed through auth/token/renew.
#include "sigil/api/vault/impl.h"

namespace sigil::vault {
namespace {

// The lease id of a request: after `prefix` in the path when given there, else the body's
// lease_id ("" when neither).
Result<std::string> LeaseIdOf(const Request& r, std::string_view prefix) {
  if (r.path.size() > prefix.size() + 1 && r.path.starts_with(std::string(prefix) + "/")) return r.path.substr(prefix.size() + 1);
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> id, StringField(r.body, "lease_id"));
  return id.value_or("");
}

std::string Time(Clock::TimePoint t) { return FormatRfc3339(t); }

}  // namespace

std::optional<Reply> VaultApi::Impl::SysLeases(const Request& r) {
  std::string_view p = r.path;
  if (!p.starts_with("sys/leases/") && !p.starts_with("sys/renew") && !p.starts_with("sys/revoke")) return std::nullopt;
  if (options_.leases == nullptr) return std::nullopt;
  leases::Manager& m = *options_.leases;
  auto fail = [&](const Status& s) { return errors_.Render(s, core::RequestInfo{}); };
  bool write = r.op == Operation::kWrite;
  // Which operation, and the path prefix its id or prefix follows.
  auto is = [&](std::string_view op) {
    for (std::string_view base : {std::string_view("sys/leases/"), std::string_view("sys/")}) {
      std::string full = std::string(base) + std::string(op);
      if (p == full || p.starts_with(full + "/")) return std::optional<std::string>(full);
    }
    return std::optional<std::string>();
  };

  if (p == "sys/leases/lookup" || p.starts_with("sys/leases/lookup/")) {
    if (r.op == Operation::kList) {
      std::string prefix = p.size() > 18 ? std::string(p.substr(18)) : "";
      if (!prefix.empty() && !prefix.ends_with("/")) prefix += "/";  // a prefix is a folder
      Result<std::vector<std::string>> keys = m.List(prefix);
      if (!keys.ok()) return fail(keys.error());
      if (keys->empty()) return NotFound();
      return Envelope(Json{{"keys", *keys}});
    }
    if (!write || p != "sys/leases/lookup") return Error(405, "unsupported operation");
    Result<std::string> id = LeaseIdOf(r, "sys/leases/lookup");
    if (!id.ok()) return Error(400, id.error().message());
    if (id->empty()) return Error(400, "missing lease id");
    Result<std::optional<leases::Lease>> l = m.Lookup(*id);
    if (!l.ok()) return fail(l.error());
    if (!*l) return Error(400, "invalid lease");
    Clock::TimePoint now = clock_->Now();
    int64_t ttl = std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::seconds>((*l)->expires - now).count());
    return Envelope(Json{{"expire_time", Time((*l)->expires)},
                         {"id", (*l)->id},
                         {"issue_time", Time((*l)->issued)},
                         {"last_renewal", (*l)->last_renewal ? Json(Time(*(*l)->last_renewal)) : Json(nullptr)},
                         {"renewable", (*l)->renewable},
                         {"ttl", ttl}});
  }
  if (std::optional<std::string> base = is("renew")) {
    if (!write) return Error(405, "unsupported operation");
    Result<std::string> id = LeaseIdOf(r, *base);
    if (!id.ok()) return Error(400, id.error().message());
    if (id->empty()) return Error(400, "missing lease id");
    Result<std::optional<std::chrono::seconds>> inc = DurationField(r.body, "increment");
    if (!inc.ok()) return Error(400, inc.error().message());
    Result<std::optional<leases::Lease>> l = m.Lookup(*id);
    if (!l.ok()) return fail(l.error());
    if (!*l) return Error(400, "lease not found");
    if ((*l)->kind == "token") return Error(400, "a token's lease is renewed by renewing the token (auth/token/renew)");
    bool capped = false;
    Result<leases::Lease> renewed = m.Renew(*id, *inc, &capped);
    if (!renewed.ok()) {
      if (renewed.error().code() == StatusCode::kInvalidArgument || renewed.error().code() == StatusCode::kNotFound) {
        return Error(400, renewed.error().message());
      }
      return fail(renewed.error());
    }
    std::vector<std::string> warnings;
    if (capped) warnings.push_back("TTL of the renewal exceeded the lease's max TTL; TTL value is capped accordingly");
    int64_t ttl = std::chrono::duration_cast<std::chrono::seconds>(renewed->expires - clock_->Now()).count();
    return LeaseEnvelope(renewed->id, renewed->renewable, ttl, warnings);
  }
  for (std::string_view op : {std::string_view("revoke-prefix"), std::string_view("revoke-force")}) {
    if (std::optional<std::string> base = is(op)) {
      if (!write) return Error(405, "unsupported operation");
      std::string prefix = p.size() > base->size() + 1 ? std::string(p.substr(base->size() + 1)) : "";
      if (prefix.empty()) return Error(400, "missing prefix");
      Result<std::optional<bool>> sync = BoolField(r.body, "sync");
      if (!sync.ok()) return Error(400, sync.error().message());
      // As Vault: revoke-prefix revokes before answering unless sync=false.
      Result<size_t> n = m.RevokePrefix(prefix, op == "revoke-force", sync->value_or(true));
      if (!n.ok()) return fail(n.error());
      return NoContent();
    }
  }
  if (std::optional<std::string> base = is("revoke")) {
    if (!write) return Error(405, "unsupported operation");
    Result<std::string> id = LeaseIdOf(r, *base);
    if (!id.ok()) return Error(400, id.error().message());
    if (id->empty()) return Error(400, "missing lease id");
    Result<std::optional<bool>> sync = BoolField(r.body, "sync");
    if (!sync.ok()) return Error(400, sync.error().message());
    // As Vault: sync (the default) revokes before answering; sync=false queues it.
    Status st = sync->value_or(true) ? m.Revoke(*id) : m.RevokeLater(*id);
    if (st.code() == StatusCode::kNotFound) return NoContent();  // nothing to revoke
    if (!st.ok()) return fail(st);
    return NoContent();
  }
  if (p == "sys/leases/tidy") {
    if (!write) return Error(405, "unsupported operation");
    Result<size_t> n = m.Tidy();
    if (!n.ok()) return fail(n.error());
    std::vector<std::string> said = {"tidy fixed " + std::to_string(*n) + " lease index entries"};
    if (options_.database != nullptr) {
      std::vector<std::string> problems;
      Result<size_t> orphans = options_.database->TidyOrphans(&problems);
      if (!orphans.ok()) return fail(orphans.error());
      said.push_back("tidy dropped " + std::to_string(*orphans) + " database users that no lease held");
      for (std::string& problem : problems) said.push_back(std::move(problem));
    }
    return NoContent(said);
  }
  return Error(404, "no handler for route \"" + r.path.substr(0, 256) + "\". route entry not found.");
}

}  // namespace sigil::vault

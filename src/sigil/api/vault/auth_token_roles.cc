// api/vault/auth_token_roles.cc: token roles (auth/token/roles/<name>: write, read, list,
// delete). A role lets auth/token/create/<name> make tokens with the role's allowed policies
// (rather than a subset of the caller's), as orphans, periodic, limited in uses or in their
// explicit max TTL, without the caller needing sudo for those (auth_token.cc applies them).
#include "sigil/api/vault/impl.h"
#include "sigil/authz/policy_store.h"

namespace sigil::vault {
namespace {

bool ValidRoleName(std::string_view n) {
  if (n.empty() || n.size() > 128) return false;
  for (char c : n) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
  }
  return true;
}

Json PolicyList(const std::vector<std::string>& in) {
  std::set<std::string> set;
  for (const std::string& p : in) {
    std::string l = authz::PolicyStore::Lower(p);
    if (!l.empty()) set.insert(l);
  }
  return Json(std::vector<std::string>(set.begin(), set.end()));
}

Json RoleData(const std::string& name, const Json& role) {
  return Json{{"allowed_entity_aliases", Json::array()},
              {"allowed_policies", role.value("allowed_policies", Json::array())},
              {"allowed_policies_glob", Json::array()},
              {"disallowed_policies", role.value("disallowed_policies", Json::array())},
              {"disallowed_policies_glob", Json::array()},
              {"explicit_max_ttl", role.value("token_explicit_max_ttl", int64_t{0})},
              {"name", name},
              {"orphan", role.value("orphan", false)},
              {"path_suffix", role.value("path_suffix", "")},
              {"period", role.value("token_period", int64_t{0})},
              {"renewable", role.value("renewable", true)},
              {"token_bound_cidrs", Json::array()},
              {"token_explicit_max_ttl", role.value("token_explicit_max_ttl", int64_t{0})},
              {"token_no_default_policy", role.value("token_no_default_policy", false)},
              {"token_num_uses", role.value("token_num_uses", int64_t{0})},
              {"token_period", role.value("token_period", int64_t{0})},
              {"token_type", "default-service"}};
}

}  // namespace

Result<std::optional<Json>> VaultApi::Impl::TokenRole(std::string_view name) {
  if (!ValidRoleName(name)) return std::optional<Json>();
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> doc, options_.tokens->GetRole(name));
  if (!doc) return std::optional<Json>();
  Json j = Json::parse(*doc, nullptr, false);
  if (!j.is_object()) return DataLossError("a stored token role is not a JSON object");
  return std::optional<Json>(std::move(j));
}

std::optional<Reply> VaultApi::Impl::TokenRoles(const Request& r) {
  if (r.path != "auth/token/roles" && r.path != "auth/token/roles/" && !r.path.starts_with("auth/token/roles/")) {
    return std::nullopt;
  }
  auth::TokenStore& tokens = *options_.tokens;
  std::string name = r.path.size() > 17 ? r.path.substr(17) : "";
  if (name.empty()) {
    if (r.op != Operation::kList) return Error(405, "unsupported operation");
    Result<std::vector<std::string>> names = tokens.RoleNames();
    if (!names.ok()) return errors_.Render(names.error(), core::RequestInfo{});
    if (names->empty()) return NotFound();
    return Envelope(Json{{"keys", *names}});
  }
  if (!ValidRoleName(name)) return Error(400, "invalid role name");
  Result<std::optional<Json>> existing = TokenRole(name);
  if (!existing.ok()) return errors_.Render(existing.error(), core::RequestInfo{});
  switch (r.op) {
    case Operation::kRead:
      if (!*existing) return NotFound();
      return Envelope(RoleData(name, **existing));
    case Operation::kDelete: {
      Status st = tokens.DeleteRole(name);
      if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
      return NoContent();
    }
    case Operation::kWrite: {
      if (std::optional<Reply> refused = RefuseUnsupported(r.body, {"allowed_policies_glob", "disallowed_policies_glob",
                                                                    "allowed_entity_aliases", "token_bound_cidrs",
                                                                    "bound_cidrs"})) {
        return std::move(*refused);
      }
      Json role = existing->value_or(Json{{"renewable", true}});
      auto list = [&](const char* field) -> Status {
        SIGIL_ASSIGN_OR_RETURN(std::optional<std::vector<std::string>> v, ListField(r.body, field));
        if (v) role[field] = PolicyList(*v);
        return OkStatus();
      };
      auto flag = [&](const char* field, const char* stored) -> Status {
        SIGIL_ASSIGN_OR_RETURN(std::optional<bool> v, BoolField(r.body, field));
        if (v) role[stored] = *v;
        return OkStatus();
      };
      // Each token_* field, with Vault's older name as an alias.
      auto duration = [&](const char* field, const char* alias) -> Status {
        SIGIL_ASSIGN_OR_RETURN(std::optional<std::chrono::seconds> v, DurationField(r.body, field));
        if (!v) {
          SIGIL_ASSIGN_OR_RETURN(v, DurationField(r.body, alias));
        }
        if (v) role[field] = v->count();
        return OkStatus();
      };
      for (Status st : {list("allowed_policies"), list("disallowed_policies"), flag("orphan", "orphan"),
                        flag("renewable", "renewable"), flag("token_no_default_policy", "token_no_default_policy"),
                        duration("token_explicit_max_ttl", "explicit_max_ttl"), duration("token_period", "period")}) {
        if (!st.ok()) return Error(400, st.message());
      }
      Result<std::optional<int64_t>> uses = IntField(r.body, "token_num_uses");
      if (!uses.ok()) return Error(400, uses.error().message());
      if (*uses) {
        if (**uses < 0) return Error(400, "token_num_uses cannot be negative");
        role["token_num_uses"] = **uses;
      }
      Result<std::optional<std::string>> suffix = StringField(r.body, "path_suffix");
      if (!suffix.ok()) return Error(400, suffix.error().message());
      if (*suffix) {
        if (!(*suffix)->empty() && (!ValidRoleName(**suffix) || (*suffix)->find("..") != std::string::npos)) {
          return Error(400, "path_suffix contains invalid characters");
        }
        role["path_suffix"] = **suffix;
      }
      Result<std::optional<std::string>> type = StringField(r.body, "token_type");
      if (!type.ok()) return Error(400, type.error().message());
      if (*type && **type != "service" && **type != "default-service" && **type != "default") {
        return Error(400, "only service tokens are supported by sigil");
      }
      Status st = tokens.PutRole(name, role.dump());
      if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
      return NoContent();
    }
    default:
      return Error(405, "unsupported operation");
  }
}

}  // namespace sigil::vault

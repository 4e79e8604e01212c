// api/vault/sys_policy.cc: ACL policies (sys/policy, the legacy routes hvac 0.11.2 and
// node-vault use; sys/policies/acl, the current ones) and capability queries
// (sys/capabilities-self, and of another token: sys/capabilities, sys/capabilities-accessor).
#include <algorithm>

#include "sigil/api/vault/impl.h"
#include "sigil/base/encoding.h"

namespace sigil::vault {
namespace {

// The policy text of a write: "policy" ("rules" in the legacy route), which
// sys/policies/acl also accepts base64-encoded.
Result<std::string> PolicyText(const Json& body, bool legacy, bool base64_ok) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<std::string> text, StringField(body, "policy"));
  if (!text && legacy) {
    SIGIL_ASSIGN_OR_RETURN(text, StringField(body, "rules"));
  }
  if (!text || text->empty()) return InvalidArgumentError("'policy' parameter not supplied or empty");
  if (base64_ok && text->find_first_of("{}\"#\n ") == std::string::npos) {
    if (Result<std::string> raw = Base64Decode(*text); raw.ok()) return *raw;
  }
  return *text;
}

// Vault's capabilities answer for one path (vault/capabilities.go): the capabilities as a list
// request sees them ("root" for a root token, "deny" for none), sorted.
std::vector<std::string> CapabilitiesAnswer(const authz::Acl& acl, std::string_view path) {
  std::vector<std::string> names = acl.SysCapabilities(path);
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

std::optional<Reply> VaultApi::Impl::SysPolicy(const Request& r, const Identity* who) {
  authz::PolicyStore& store = *options_.policies;
  bool legacy = r.path == "sys/policy" || r.path.starts_with("sys/policy/");
  bool current = r.path == "sys/policies/acl" || r.path.starts_with("sys/policies/acl/");
  if (legacy || current) {
    std::string_view name = legacy ? std::string_view(r.path).substr(std::min<size_t>(r.path.size(), 11))
                                   : std::string_view(r.path).substr(std::min<size_t>(r.path.size(), 17));
    if (name.empty()) {  // the collection
      if (r.op != Operation::kList && !(legacy && r.op == Operation::kRead)) return Error(405, "unsupported operation");
      std::vector<std::string> names = store.Names();
      if (legacy) return SysInjected(Json{{"keys", names}, {"policies", names}});
      return Envelope(Json{{"keys", names}});
    }
    std::string lower = authz::PolicyStore::Lower(name);
    switch (r.op) {
      case Operation::kRead: {
        std::optional<std::string> text = store.Text(lower);
        if (lower == "root") text = "";
        if (!text) return NotFound();
        if (legacy) return SysInjected(Json{{"name", lower}, {"rules", *text}});
        return Envelope(Json{{"name", lower}, {"policy", *text}});
      }
      case Operation::kWrite: {
        Result<std::string> text = PolicyText(r.body, legacy, current);
        if (!text.ok()) return Error(400, text.error().message());
        Result<std::vector<std::string>> put = store.Put(lower, *text);
        if (!put.ok()) {
          if (put.error().code() == StatusCode::kInvalidArgument) return Error(400, put.error().message());
          return errors_.Render(put.error(), core::RequestInfo{});
        }
        std::vector<std::string> warnings = *put;
        if (lower != name) warnings.insert(warnings.begin(), "policy name was converted to lowercase: \"" + lower + "\"");
        return NoContent(warnings);
      }
      case Operation::kDelete: {
        Status st = store.Delete(lower);
        if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
        if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
        return NoContent();
      }
      default:
        return Error(405, "unsupported operation");
    }
  }
  if (r.path == "sys/policies/password" || r.path.starts_with("sys/policies/password/")) {
    std::string rest = r.path.size() > 22 ? r.path.substr(22) : "";
    if (rest.empty()) {
      if (r.op != Operation::kList) return Error(405, "unsupported operation");
      Result<std::vector<std::string>> names = store.PasswordPolicyNames();
      if (!names.ok()) return errors_.Render(names.error(), core::RequestInfo{});
      if (names->empty()) return NotFound();
      return Envelope(Json{{"keys", *names}});
    }
    if (rest.ends_with("/generate")) {
      if (r.op != Operation::kRead) return Error(405, "unsupported operation");
      Result<SecretBytes> pw = store.GeneratePassword(rest.substr(0, rest.size() - 9));
      if (!pw.ok()) {
        if (pw.error().code() == StatusCode::kNotFound) return Error(400, "policy does not exist");
        return errors_.Render(pw.error(), core::RequestInfo{});
      }
      return Envelope(Json{{"password", std::string(pw->view())}});
    }
    switch (r.op) {
      case Operation::kRead: {
        Result<std::optional<std::string>> text = store.PasswordPolicyText(rest);
        if (!text.ok()) return errors_.Render(text.error(), core::RequestInfo{});
        if (!*text) return NotFound();
        return Envelope(Json{{"policy", **text}});
      }
      case Operation::kWrite: {
        Result<std::optional<std::string>> text = StringField(r.body, "policy");
        if (!text.ok()) return Error(400, text.error().message());
        if (!*text || (*text)->empty()) return Error(400, "missing policy");
        std::string policy = **text;
        // As sys/policies/acl: the text may be base64-encoded.
        if (policy.find_first_of("={\n ") == std::string::npos) {
          if (Result<std::string> decoded = Base64Decode(policy); decoded.ok()) policy = *decoded;
        }
        Status st = store.PutPasswordPolicy(rest, policy);
        if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
        if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
        return NoContent();
      }
      case Operation::kDelete: {
        Status st = store.DeletePasswordPolicy(rest);
        if (!st.ok()) return errors_.Render(st, core::RequestInfo{});
        return NoContent();
      }
      default:
        return Error(405, "unsupported operation");
    }
  }
  if (r.path == "sys/capabilities-self" || r.path == "sys/capabilities" || r.path == "sys/capabilities-accessor") {
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    // Whose capabilities: the caller's, or those of the token (or accessor) the body names.
    std::optional<Identity> other;
    if (r.path != "sys/capabilities-self") {
      bool by_accessor = r.path == "sys/capabilities-accessor";
      Result<std::optional<std::string>> v = StringField(r.body, by_accessor ? "accessor" : "token");
      if (!v.ok()) return Error(400, v.error().message());
      if (!*v || (*v)->empty()) return Error(400, by_accessor ? "missing accessor" : "missing token");
      if (options_.tokens == nullptr) return Error(400, "invalid token");
      Result<std::optional<auth::TokenInfo>> t =
          by_accessor ? options_.tokens->FindByAccessor(**v) : options_.tokens->Find(**v);
      if (!t.ok()) return errors_.Render(t.error(), core::RequestInfo{});
      if (!*t) return Error(400, by_accessor ? "invalid accessor" : "invalid token");
      other = (*t)->ToIdentity();
    }
    Result<std::optional<std::vector<std::string>>> paths = ListField(r.body, "paths");
    if (!paths.ok()) return Error(400, paths.error().message());
    std::vector<std::string> list = paths->value_or(std::vector<std::string>{});
    if (list.empty()) {
      Result<std::optional<std::string>> one = StringField(r.body, "path");
      if (one.ok() && *one) list.push_back(**one);
    }
    if (list.empty()) return Error(400, "'paths' must be supplied");
    if (who == nullptr) return Error(403, "permission denied");
    authz::Acl acl = store.AclFor(other ? *other : *who);
    Json data = Json::object();
    for (std::string p : list) {
      if (p.starts_with("/")) p.erase(0, 1);
      data[p] = CapabilitiesAnswer(acl, p);
    }
    if (list.size() == 1) data["capabilities"] = data[list[0].starts_with("/") ? list[0].substr(1) : list[0]];
    return SysInjected(std::move(data));
  }
  return std::nullopt;
}

}  // namespace sigil::vault

// api/vault/auth_userpass.cc: the userpass auth method (auth/<mount>/...): users with a password
// and policies, and login. Passwords are stored only as Argon2id hashes (crypto/password.h), in
// the mount's own storage (engines::Storage); a login for a user that does not exist does the
// same hashing work as one that does. A login makes an orphan Vault token holding the user's
// policies and "default", as Vault's userpass does.
#include <algorithm>
#include <set>

#include "sigil/api/vault/impl.h"
#include "sigil/crypto/password.h"

namespace sigil::vault {
namespace {


bool ValidUser(std::string_view n) {
  if (n.empty() || n.size() > 128 || n == "." || n == "..") return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' || c == '@';
  });
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Json UserView(const Json& u) {
  Json policies = u.value("token_policies", Json::array());
  return Json{{"token_policies", policies},
              {"policies", policies},
              {"token_ttl", u.value("token_ttl", int64_t{0})},
              {"ttl", u.value("token_ttl", int64_t{0})},
              {"token_max_ttl", u.value("token_max_ttl", int64_t{0})},
              {"max_ttl", u.value("token_max_ttl", int64_t{0})},
              {"token_period", 0},
              {"token_explicit_max_ttl", 0},
              {"token_no_default_policy", false},
              {"token_num_uses", 0},
              {"token_type", "default"},
              {"token_bound_cidrs", Json::array()}};
}

}  // namespace

std::optional<Reply> VaultApi::Impl::AuthUserpass(const Request& r, const engines::Mount& mount) {
  engines::Storage storage = options_.auth_mounts->StorageFor(mount);
  std::string rest = MountRest(r.path, mount);  // after "auth/<mount>/"
  auto fail = [this](const Status& st) {
    if (st.code() == StatusCode::kInvalidArgument) return Error(400, st.message());
    return errors_.Render(st, core::RequestInfo{});
  };
  auto load = [&storage](const std::string& name) -> Result<std::optional<std::pair<Json, int64_t>>> {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage.Get("user/" + name));
    if (!o) return std::optional<std::pair<Json, int64_t>>();
    Json j = Json::parse(o->doc.view(), nullptr, false);
    if (!j.is_object()) return DataLossError("a stored userpass user is malformed");
    return std::optional<std::pair<Json, int64_t>>(std::make_pair(std::move(j), o->revision));
  };
  auto policies_from = [](const Json& body) -> Result<std::optional<std::vector<std::string>>> {
    SIGIL_ASSIGN_OR_RETURN(auto p, ListField(body, "token_policies"));
    if (!p) {
      SIGIL_ASSIGN_OR_RETURN(p, ListField(body, "policies"));
    }
    if (!p) return p;
    std::set<std::string> set;
    for (const std::string& x : *p) {
      if (!x.empty()) set.insert(authz::PolicyStore::Lower(x));
    }
    return std::optional<std::vector<std::string>>(std::vector<std::string>(set.begin(), set.end()));
  };

  if (rest == "users" || rest == "users/") {
    if (r.op != Operation::kList) return Error(405, "unsupported operation");
    Result<std::vector<std::string>> names = storage.List("user/");
    if (!names.ok()) return fail(names.error());
    if (names->empty()) return NotFound();
    return Envelope(Json{{"keys", *names}});
  }

  if (rest.starts_with("users/")) {
    std::string tail = rest.substr(6);
    std::string field;
    if (size_t slash = tail.find('/'); slash != std::string::npos) {
      field = tail.substr(slash + 1);
      tail.resize(slash);
    }
    std::string name = Lower(tail);
    if (!ValidUser(name)) return Error(400, "invalid username");
    if (!field.empty() && field != "password" && field != "policies") return Error(404, "unsupported path");
    if (r.op == Operation::kRead && field.empty()) {
      Result<std::optional<std::pair<Json, int64_t>>> u = load(name);
      if (!u.ok()) return fail(u.error());
      if (!*u) return NotFound();
      return Envelope(UserView((*u)->first));
    }
    if (r.op == Operation::kDelete && field.empty()) {
      Status st = storage.Delete("user/" + name);
      if (!st.ok()) return fail(st);
      return NoContent();
    }
    if (std::optional<Reply> no = RefuseUnsupported(r.body, {"token_bound_cidrs", "bound_cidrs", "token_num_uses", "token_period", "token_no_default_policy", "token_explicit_max_ttl"})) return std::move(*no);
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    for (int attempt = 0; attempt < 8; ++attempt) {
      Result<std::optional<std::pair<Json, int64_t>>> u = load(name);
      if (!u.ok()) return fail(u.error());
      if (!*u && !field.empty()) return Error(400, "username does not exist");
      Json user = *u ? (*u)->first : Json::object();
      Result<std::optional<std::string>> password = StringField(r.body, "password");
      if (!password.ok()) return fail(password.error());
      if (field != "policies" && *password) {
        if ((*password)->empty()) return Error(400, "missing password");
        Result<std::string> hash = crypto::HashPassword(**password);
        if (!hash.ok()) return fail(hash.error());
        user["password_hash"] = *hash;
      } else if (field == "password" || (!*u && field.empty())) {
        return Error(400, "missing password");
      }
      if (field != "password") {
        Result<std::optional<std::vector<std::string>>> p = policies_from(r.body);
        if (!p.ok()) return fail(p.error());
        if (*p) user["token_policies"] = **p;
        if (field.empty()) {
          auto ttl = DurationField(r.body, "token_ttl");
          if (ttl.ok() && !*ttl) ttl = DurationField(r.body, "ttl");
          auto max = DurationField(r.body, "token_max_ttl");
          if (max.ok() && !*max) max = DurationField(r.body, "max_ttl");
          if (!ttl.ok()) return fail(ttl.error());
          if (!max.ok()) return fail(max.error());
          if (*ttl) user["token_ttl"] = (*ttl)->count();
          if (*max) user["token_max_ttl"] = (*max)->count();
        }
      }
      Result<int64_t> put = storage.Put("user/" + name, SecretBytes(user.dump()), *u ? std::optional<int64_t>((*u)->second) : std::nullopt);
      if (put.ok()) return NoContent();
      if (put.error().code() != StatusCode::kAborted && put.error().code() != StatusCode::kAlreadyExists) return fail(put.error());
    }
    return Error(503, "the user kept changing while it was written; try again");
  }

  if (rest.starts_with("login/")) {
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    std::string name = Lower(rest.substr(6));
    Result<std::optional<std::string>> password = StringField(r.body, "password");
    if (!password.ok()) return fail(password.error());
    if (!*password || (*password)->empty()) return Error(400, "missing password");
    std::optional<std::pair<Json, int64_t>> user;
    if (ValidUser(name)) {
      Result<std::optional<std::pair<Json, int64_t>>> u = load(name);
      if (!u.ok()) return fail(u.error());
      user = std::move(*u);
    }
    bool ok = false;
    if (user) {
      ok = crypto::VerifyPassword(user->first.value("password_hash", ""), **password);
    } else {
      crypto::VerifyPasswordDecoy(**password);  // a miss costs what a hit does
    }
    if (!ok) return Error(400, "invalid username or password");
    return IssueLoginToken(user->first, {{"username", name}}, mount.path.substr(0, mount.path.size() - 1) + "-" + name,
                           "auth/" + mount.path + "login/" + name, mount);
  }
  return Error(404, "unsupported path");
}

}  // namespace sigil::vault

// api/vault/sys_seal.cc: the endpoints that answer in every state (SealEndpoints in
// seal_control.h): sys/init, sys/seal-status, sys/unseal, sys/health, sys/leader, sys/rekey/*.
#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>

#include "sigil/api/http/errors.h"
#include "sigil/api/vault/request.h"
#include "sigil/api/vault/response.h"
#include "sigil/api/vault/seal_control.h"
#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"

namespace sigil::vault {
namespace {

constexpr std::string_view kPaths[] = {"sys/init", "sys/seal-status", "sys/unseal", "sys/health",
                                       "sys/leader", "sys/rekey/init", "sys/rekey/update"};

// A share as Vault takes it: hex when it decodes as hex of a plausible length (16-33 bytes),
// else standard base64.
Result<SecretBytes> DecodeShare(const std::string& text) {
  auto hex = HexDecode(text);
  if (hex.ok() && hex->size() >= 16 && hex->size() <= 33) {
    SecretBytes out(*hex);
    internal::SecureZero(hex->data(), hex->size());
    return out;
  }
  auto b64 = Base64DecodeSecret(text);
  if (!b64.ok() || b64->empty()) return InvalidArgumentError("'key' must be a valid hex or base64 string");
  return std::move(b64).value();
}

Json SharesJson(const std::vector<SecretBytes>& shares, Json extra) {
  Json hex = Json::array(), b64 = Json::array();
  for (const SecretBytes& s : shares) {
    hex.push_back(HexEncode(s.view()));
    b64.push_back(Base64Encode(s.view()));
  }
  Json out = {{"keys", std::move(hex)}, {"keys_base64", std::move(b64)}};
  for (auto& [k, v] : extra.items()) out[k] = v;
  return out;
}

Json StatusJson(const SealStatus& s, const std::string& version) {
  Json j = {{"type", s.type},
            {"initialized", s.initialized},
            {"sealed", s.sealed},
            {"t", s.threshold},
            {"n", s.shares},
            {"progress", s.progress},
            {"nonce", s.nonce},
            {"version", version},
            {"build_date", "1970-01-01T00:00:00Z"},
            {"migration", false},
            {"recovery_seal", false},
            {"storage_type", "lmdb"}};
  if (!s.sealed) {
    j["cluster_name"] = s.cluster_name;
    j["cluster_id"] = s.cluster_id;
  }
  return j;
}

Json RekeyJson(const RekeyStatus& s) {
  return Json{{"started", s.started},
              {"nonce", s.nonce},
              {"t", s.threshold},
              {"n", s.shares},
              {"progress", s.progress},
              {"required", s.required},
              {"pgp_fingerprints", nullptr},
              {"backup", false},
              {"verification_required", false}};
}

// Vault's status for a failed seal operation: 503 while sealed, 400 for the caller's mistakes.
Reply Fail(const Status& s) {
  switch (s.code()) {
    case StatusCode::kUnavailable: return Error(503, "Vault is sealed");
    case StatusCode::kInvalidArgument:
    case StatusCode::kFailedPrecondition:
    case StatusCode::kPermissionDenied:
    case StatusCode::kAborted: return Error(400, s.message());
    default:
      log::Error("seal operation failed", {{"error", s.ToString()}});
      return Error(500, s.message());
  }
}

Result<std::pair<int, int>> SharesAndThreshold(const Json& body) {
  SIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> n, IntField(body, "secret_shares"));
  SIGIL_ASSIGN_OR_RETURN(std::optional<int64_t> t, IntField(body, "secret_threshold"));
  auto clamp = [](std::optional<int64_t> v) { return static_cast<int>(std::clamp<int64_t>(v.value_or(0), -1, 1000)); };
  return std::make_pair(clamp(n), clamp(t));
}

Result<int> CodeParam(const Request& r, const char* name, int fallback) {
  auto it = r.query.find(name);
  if (it == r.query.end() || it->second.empty()) return fallback;
  int code = 0;
  const std::string& v = it->second;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), code);
  if (ec != std::errc() || end != v.data() + v.size() || code < 100 || code > 599) {
    return InvalidArgumentError(std::string("unable to parse ") + name + " code: the value is not an HTTP status code");
  }
  return code;
}

Reply Health(const Request& r, SealControl* control, Clock* clock, const std::string& version) {
  if (r.op != Operation::kRead) return Error(405, "unsupported operation");
  for (const char* bool_param : {"standbyok", "perfstandbyok"}) {
    if (auto it = r.query.find(bool_param); it != r.query.end() && !it->second.empty() && !ParseBool(it->second)) {
      return Error(400, std::string("bad value for ") + bool_param + " parameter");
    }
  }
  int codes[3];
  const char* names[3] = {"activecode", "sealedcode", "uninitcode"};
  const int defaults[3] = {200, 503, 501};
  for (int i = 0; i < 3; ++i) {
    auto c = CodeParam(r, names[i], defaults[i]);
    if (!c.ok()) return Error(400, c.error().message());
    codes[i] = *c;
  }
  for (const char* other : {"standbycode", "drsecondarycode", "performancestandbycode"}) {
    if (auto c = CodeParam(r, other, 200); !c.ok()) return Error(400, c.error().message());
  }
  SealStatus s = control->Status();
  int code = !s.initialized ? codes[2] : s.sealed ? codes[1] : codes[0];
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock->Now().time_since_epoch()).count();
  Json body = {{"initialized", s.initialized},
               {"sealed", s.sealed},
               {"standby", false},
               {"performance_standby", false},
               {"replication_performance_mode", "disabled"},
               {"replication_dr_mode", "disabled"},
               {"server_time_utc", now},
               {"version", version}};
  if (!s.sealed) {
    body["cluster_name"] = s.cluster_name;
    body["cluster_id"] = s.cluster_id;
  }
  return Raw(code, body);
}

Reply Init(const Request& r, SealControl* control) {
  if (r.op == Operation::kRead) return Raw(200, Json{{"initialized", control->Status().initialized}});
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  if (std::optional<Reply> refused = RefuseUnsupported(r.body, {"pgp_keys", "root_token_pgp_key", "recovery_shares",
                                                                "recovery_threshold", "recovery_pgp_keys"})) {
    return std::move(*refused);
  }
  auto nt = SharesAndThreshold(r.body);
  if (!nt.ok()) return Error(400, nt.error().message());
  auto done = control->Initialize(nt->first, nt->second);
  if (!done.ok()) return Fail(done.error());
  log::Info("initialised", {{"secret_shares", nt->first}, {"secret_threshold", nt->second}});
  return Raw(200, SharesJson(done->shares, Json{{"root_token", std::string(done->root_token.view())}}));
}

Reply Unseal(const Request& r, SealControl* control, const std::string& version) {
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  auto reset = BoolField(r.body, "reset");
  if (!reset.ok()) return Error(400, reset.error().message());
  if (reset->value_or(false)) return Raw(200, StatusJson(control->ResetUnseal(), version));
  if (auto migrate = BoolField(r.body, "migrate"); migrate.ok() && migrate->value_or(false)) {
    return Error(400, "seal migration is not supported by sigil");
  }
  auto key = StringField(r.body, "key");
  if (!key.ok()) return Error(400, key.error().message());
  if (!key->has_value() || (*key)->empty()) {
    return Error(400, "'key' must be specified in request body as JSON, or 'reset' set to true");
  }
  auto share = DecodeShare(**key);
  if (!share.ok()) return Error(400, share.error().message());
  auto s = control->Unseal(std::move(share).value());
  if (!s.ok()) return Fail(s.error());
  return Raw(200, StatusJson(*s, version));
}

// As Vault without HA storage answers, sealed or not.
Reply Leader(const Request& r) {
  if (r.op != Operation::kRead) return Error(405, "unsupported operation");
  return Raw(200, Json{{"ha_enabled", false},
                       {"is_self", false},
                       {"active_time", "0001-01-01T00:00:00Z"},
                       {"leader_address", ""},
                       {"leader_cluster_address", ""},
                       {"performance_standby", false},
                       {"performance_standby_last_remote_wal", 0}});
}

Reply Rekey(const Request& r, SealControl* control) {
  if (r.path == "sys/rekey/init") {
    if (r.op == Operation::kRead) {
      auto s = control->RekeyStatusNow();
      return s.ok() ? Raw(200, RekeyJson(*s)) : Fail(s.error());
    }
    if (r.op == Operation::kDelete) {
      Status st = control->RekeyCancel();
      return st.ok() ? NoContent() : Fail(st);
    }
    if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
    if (std::optional<Reply> refused = RefuseUnsupported(r.body, {"pgp_keys", "backup", "require_verification"})) {
      return std::move(*refused);
    }
    auto nt = SharesAndThreshold(r.body);
    if (!nt.ok()) return Error(400, nt.error().message());
    auto s = control->RekeyInit(nt->first, nt->second);
    return s.ok() ? Raw(200, RekeyJson(*s)) : Fail(s.error());
  }
  if (r.op != Operation::kWrite) return Error(405, "unsupported operation");
  auto key = StringField(r.body, "key");
  auto nonce = StringField(r.body, "nonce");
  if (!key.ok()) return Error(400, key.error().message());
  if (!nonce.ok()) return Error(400, nonce.error().message());
  if (!key->has_value() || (*key)->empty()) return Error(400, "'key' must be specified in request body as JSON");
  auto share = DecodeShare(**key);
  if (!share.ok()) return Error(400, share.error().message());
  auto u = control->RekeyAdd(std::move(share).value(), nonce->value_or(""));
  if (!u.ok()) return Fail(u.error());
  if (!u->shares) return Raw(200, RekeyJson(u->status));
  log::Info("rekeyed: new unseal key shares issued", {{"secret_shares", u->status.shares}, {"secret_threshold", u->status.threshold}});
  return Raw(200, SharesJson(*u->shares, Json{{"complete", true}, {"nonce", u->status.nonce}, {"backup", false},
                                              {"verification_required", false}}));
}

}  // namespace

SealEndpoints::SealEndpoints(SealControl* control, Clock* clock, std::string version)
    : control_(control), clock_(clock), version_(std::move(version)) {}

SealEndpoints::~SealEndpoints() { pool_.join(); }

http::Response SealEndpoints::Serve(const http::Request& req) {
  Result<Request> r = Decode(req);
  if (!r.ok()) return ToHttp(req, Error(400, r.error().message()));
  Reply reply;
  if (r->path == "sys/health") {
    reply = Health(*r, control_, clock_, version_);
  } else if (r->path == "sys/seal-status") {
    reply = r->op == Operation::kRead ? Raw(200, StatusJson(control_->Status(), version_)) : Error(405, "unsupported operation");
  } else if (r->path == "sys/init") {
    reply = Init(*r, control_);
  } else if (r->path == "sys/unseal") {
    reply = Unseal(*r, control_, version_);
  } else if (r->path == "sys/leader") {
    reply = Leader(*r);
  } else {
    reply = Rekey(*r, control_);
  }
  return ToHttp(req, std::move(reply));
}

void SealEndpoints::Register(http::Router* router) {
  for (std::string_view p : kPaths) {
    router->Handle("/v1/" + std::string(p), [this, p](const http::Request& req, const http::RequestContext&, http::Responder respond) {
      auto serve = [this](const http::Request& r) {
        try {
          return Serve(r);
        } catch (const std::exception& e) {
          log::Error("vault api: a seal request failed unexpectedly", {{"error", e.what()}});
          return http::ErrorResponse(r, InternalError("internal error"));
        }
      };
      // Status reads take a lock for a moment and never wait for an unseal: answered here, so
      // health checks keep working while an unseal or a seal's teardown is under way.
      bool read = req.method() == http::Verb::get || req.method() == http::Verb::head;
      if (p == "sys/health" || p == "sys/seal-status" || p == "sys/leader" || (read && p == "sys/init")) {
        return respond(serve(req));
      }
      // Anyone may call these: a bounded queue, so callers cannot pile up work (and bodies).
      if (queued_.fetch_add(1) >= kMaxQueued) {
        queued_.fetch_sub(1);
        return respond(ToHttp(req, Error(503, "too many seal operations are waiting; try again")));
      }
      auto copy = std::make_shared<http::Request>(req);
      boost::asio::post(pool_, [this, copy, serve, respond = std::move(respond)] {
        http::Response res = serve(*copy);
        queued_.fetch_sub(1);
        respond(std::move(res));
      });
    });
  }
}

}  // namespace sigil::vault

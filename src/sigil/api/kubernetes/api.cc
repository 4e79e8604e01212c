#include "sigil/api/kubernetes/api.h"

#include <boost/asio/post.hpp>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <thread>
#include <mutex>
#include <set>

#include "sigil/api/kubernetes/managed_fields.h"
#include "sigil/api/kubernetes/protobuf.h"
#include "sigil/api/kubernetes/selectors.h"
#include "sigil/api/kubernetes/validation.h"
#include "sigil/api/kubernetes/yaml_json.h"
#include "sigil/base/encoding.h"
#include "sigil/base/logging.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/store/history.h"

namespace sigil::kube {
namespace {

constexpr size_t kMaxSecretSize = 1024 * 1024;
constexpr int kMaxJsonDepth = 100;
// Retries of an unconditional update that lost a race (kube-apiserver retries without a cap; a
// cap keeps a pathological hot key from looping forever).
constexpr int kMaxUpdateRetries = 100;
const char kHistoryAnnotation[] = "sigil.dev/history-versions";
const char kTableContentType[] = "application/json;as=Table;v=v1;g=meta.k8s.io";
const char kAggregatedContentType[] = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

// ---- the kinds served through the generic object handlers ----------------------------------

// Secrets and the four RBAC kinds share one set of handlers (create, get, list, update, patch,
// apply, delete, deletecollection, watch); what differs is described here and in the few
// per-kind functions (Prepare, Validate, TableFor, UpdateRules).
struct ResourceType {
  std::string group;  // "" for the core group
  std::string kind;
  std::string plural;
  bool namespaced;

  std::string ApiVersion() const { return group.empty() ? "v1" : group + "/v1"; }
  // How kube-apiserver names the resource in messages: "secrets", "roles.rbac.authorization.k8s.io".
  std::string Qualified() const { return group.empty() ? plural : plural + "." + group; }
  // Where its objects live: /registry/<plural>/[<namespace>/]<name>, as kube-apiserver keeps them.
  std::string Prefix(const std::string& ns) const { return "/registry/" + plural + "/" + (ns.empty() ? "" : ns + "/"); }
  std::string Key(const std::string& ns, const std::string& name) const { return Prefix(namespaced ? ns : "") + name; }
  bool IsSecret() const { return kind == "Secret"; }
  bool IsRole() const { return kind == "Role" || kind == "ClusterRole"; }
  std::set<std::string> FieldSelectors() const {
    if (IsSecret()) return {"metadata.name", "metadata.namespace", "type"};
    return {"metadata.name", "metadata.namespace"};
  }
};

const char kRbacGroup[] = "rbac.authorization.k8s.io";
const ResourceType kSecrets{"", "Secret", "secrets", true};
const ResourceType kRoles{kRbacGroup, "Role", "roles", true};
const ResourceType kClusterRoles{kRbacGroup, "ClusterRole", "clusterroles", false};
const ResourceType kRoleBindings{kRbacGroup, "RoleBinding", "rolebindings", true};
const ResourceType kClusterRoleBindings{kRbacGroup, "ClusterRoleBinding", "clusterrolebindings", false};
const ResourceType* const kRbacTypes[] = {&kRoles, &kClusterRoles, &kRoleBindings, &kClusterRoleBindings};

// Invalid: the message names "Kind.group", details carry kind and group apart.
ApiError InvalidFor(const ResourceType& t, const std::string& name, const FieldErrors& errs) {
  ApiError e = Invalid(t.group.empty() ? t.kind : t.kind + "." + t.group, name, errs);
  if (!t.group.empty() && e.details.is_object()) {
    e.details["kind"] = t.kind;
    e.details["group"] = t.group;
  }
  return e;
}

const ResourceType* RbacType(const std::string& plural) {
  for (const ResourceType* t : kRbacTypes) {
    if (t->plural == plural) return t;
  }
  return nullptr;
}

// kube-apiserver's errors name a grouped resource "plural.group" in the message and carry the
// plural and the group apart in details.
ApiError ForType(ApiError e, const ResourceType& t) {
  if (!t.group.empty() && e.details.is_object()) {
    e.details["kind"] = t.plural;
    e.details["group"] = t.group;
  }
  return e;
}

// ---- small helpers ----------------------------------------------------------------------

std::string PercentDecode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '+' && plus_is_space) {
      out += ' ';
    } else if (c == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += c;
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view target) {
  std::map<std::string, std::string> q;
  size_t qm = target.find('?');
  if (qm == std::string_view::npos) return q;
  std::string_view rest = target.substr(qm + 1);
  while (!rest.empty()) {
    size_t amp = rest.find('&');
    std::string_view kv = rest.substr(0, amp);
    size_t eq = kv.find('=');
    std::string k = PercentDecode(kv.substr(0, eq), true);
    std::string v = eq == std::string_view::npos ? "" : PercentDecode(kv.substr(eq + 1), true);
    if (!q.count(k)) q[k] = v;
    if (amp == std::string_view::npos) break;
    rest = rest.substr(amp + 1);
  }
  return q;
}

std::string Param(const std::map<std::string, std::string>& q, const std::string& k) {
  auto it = q.find(k);
  return it == q.end() ? "" : it->second;
}

std::string NewUid() { return crypto::RandomUuid(); }

std::string GenerateNameSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::string out;
  for (int i = 0; i < 5; ++i) out += kAlphabet[crypto::RandomUint64() % (sizeof(kAlphabet) - 1)];
  return out;
}

// kube's duration.HumanDuration, as `kubectl get` prints AGE.
std::string HumanDuration(int64_t seconds) {
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    int64_t s = seconds % 60;
    return s == 0 ? std::to_string(minutes) + "m" : std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  int64_t hours = seconds / 3600;
  if (hours < 8) {
    int64_t m = minutes % 60;
    return m == 0 ? std::to_string(hours) + "h" : std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    int64_t h = hours % 24;
    return h == 0 ? std::to_string(hours / 24) + "d" : std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    int64_t dy = (hours / 24) % 365;
    return dy == 0 ? std::to_string(hours / 24 / 365) + "y" : std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

int64_t ParseRfc3339(const std::string& s) {
  std::tm tm{};
  if (strptime(s.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) return 0;
  return timegm(&tm);
}

// Rejects documents nested deeper than kMaxJsonDepth before the parser sees them.
bool DepthOk(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    if (c == '"') in_string = true;
    if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth) return false;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return true;
}

std::map<std::string, std::string> StringMap(const Json& obj) {
  std::map<std::string, std::string> m;
  if (!obj.is_object()) return m;
  for (const auto& [k, v] : obj.items()) {
    if (v.is_string()) m[k] = v.get<std::string>();
  }
  return m;
}

// Orders an ObjectMeta's fields as Go's struct does, so output reads like kube-apiserver's.
Json OrderedMeta(const Json& m) {
  static const char* kOrder[] = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                                 "generation", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                                 "labels", "annotations", "ownerReferences", "finalizers", "managedFields"};
  Json out = Json::object();
  for (const char* k : kOrder) {
    if (m.contains(k) && !m[k].is_null()) out[k] = m[k];
  }
  return out;
}

struct Path {
  std::vector<std::string> seg;  // decoded segments
  bool bad = false;
};

Path SplitPath(std::string_view target) {
  Path p;
  std::string_view path = target.substr(0, target.find('?'));
  size_t i = 0;
  while (i < path.size()) {
    while (i < path.size() && path[i] == '/') ++i;
    if (i >= path.size()) break;
    size_t j = path.find('/', i);
    std::string s = PercentDecode(path.substr(i, j == std::string_view::npos ? std::string_view::npos : j - i), false);
    if (s.find('/') != std::string::npos || s.find('\0') != std::string::npos) p.bad = true;
    p.seg.push_back(std::move(s));
    i = j == std::string_view::npos ? path.size() : j;
  }
  return p;
}

}  // namespace

// ---- the implementation ------------------------------------------------------------------

class KubernetesApi::Impl {
 public:
  // Go's strconv.ParseBool, which kube-apiserver uses for query booleans (clients send
  // "true", "True", "1": the Python client sends "True").
  static bool ParseBool(const std::string& v) {
    return v == "1" || v == "t" || v == "T" || v == "true" || v == "True" || v == "TRUE";
  }
  static bool IsWatch(const http::Request& req) {
    return req.method() == http::Verb::get &&
           (ParseBool(Param(ParseQuery(req.target()), "watch")) || req.target().starts_with("/api/v1/watch/") ||
            req.target().starts_with("/apis/rbac.authorization.k8s.io/v1/watch/"));
  }

  Impl(store::ObjectStore* store, Clock* clock, const KubernetesApi::Options& options)
      : store_(store), clock_(clock), history_(store), history_versions_(options.history_versions),
        token_reviewer_(options.token_reviewer), token_issuer_(options.token_issuer), authorizer_(options.authorizer),
        auditor_(options.auditor) {
    bookmark_thread_ = std::thread([this] { BookmarkLoop(); });
  }
  ~Impl() {
    {
      std::lock_guard<std::mutex> l(bookmark_mu_);
      bookmark_stop_ = true;
    }
    bookmark_cv_.notify_all();
    bookmark_thread_.join();
  }

  std::optional<http::Response> Serve(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who,
                                      const std::string& remote) {
    // Who the request acts as (impersonation), and whether RBAC lets it.
    Identity impersonated;
    const Identity* subject = who;
    std::optional<ApiError> refused;
    if (authorizer_ != nullptr && who != nullptr) {
      bool impersonating = false;
      refused = Impersonate(req, *who, &impersonated, &impersonating);
      if (impersonating) subject = &impersonated;
    }
    authz::Attributes a = RequestAttributes(req);
    if (!refused && authorizer_ != nullptr && (subject == nullptr || !authorizer_->Allows(*subject, a))) refused = Forbidden(a, subject);
    audit::Decision d;
    if (auditor_ != nullptr) {
      d = auditor_->Decide(audit::Request{subject, a.verb, a.resource_request, a.api_group, a.resource, a.subresource, a.namespace_,
                                          a.name, a.path});
    }
    if (d.level == audit::Level::kNone) return Handle(req, start_stream, subject, refused);

    // Audited. A request that changes state is recorded before it acts (RequestReceived, even
    // when the policy omits that stage: that is what lets a failed audit write refuse the
    // request with nothing changed); a read is recorded before its answer leaves. When no audit
    // sink can write, the answer is 503 and nothing is served.
    bool mutating = req.method() != http::Verb::get && req.method() != http::Verb::head;
    Json ev = AuditEvent(req, a, who, subject, remote, d.level, !refused);
    auto write = [&](audit::Stage stage) {
      ev["stage"] = audit::StageName(stage);
      ev["stageTimestamp"] = MicroTime();
      return auditor_->Write({ev});
    };
    auto audit_refusal = [&] {
      http::Response r = Fail(req, FromStatusMessage(503, "ServiceUnavailable", "the audit log cannot be written; the request was refused"));
      r.set("Audit-Id", ev["auditID"].get<std::string>());
      return r;
    };
    if (!d.omit_stages.count(audit::Stage::kRequestReceived) || mutating) {
      if (!write(audit::Stage::kRequestReceived).ok()) return audit_refusal();
    }
    if (!refused && IsWatch(req)) {
      if (!d.omit_stages.count(audit::Stage::kResponseStarted)) {
        ev["responseStatus"] = {{"metadata", Json::object()}, {"code", 200}};
        if (!write(audit::Stage::kResponseStarted).ok()) return audit_refusal();
      }
      return Handle(req, start_stream, subject, refused);
    }
    std::optional<http::Response> res = Handle(req, start_stream, subject, refused);
    if (!res) return res;
    res->set("Audit-Id", ev["auditID"].get<std::string>());
    if (d.omit_stages.count(audit::Stage::kResponseComplete)) return res;
    Json status = {{"metadata", Json::object()}, {"code", res->result_int()}};
    // The body is parsed only when the event needs it (an error's Status, or RequestResponse).
    Json body;
    if (res->result_int() >= 400 || d.level == audit::Level::kRequestResponse) {
      body = Json::parse(std::string_view(res->body().data(), res->body().size()), nullptr, false);
    }
    if (res->result_int() >= 400 && body.is_object() && body.value("kind", "") == "Status") {
      for (const char* f : {"status", "message", "reason"}) {
        if (body.contains(f)) status[f] = body[f];
      }
    }
    ev["responseStatus"] = status;
    // TokenReviews carry bearer tokens and audit-hash requests carry secret values: their
    // bodies are never recorded, at any level.
    bool sensitive = a.resource == "tokenreviews" || a.path == "/sigil/v1/audit/hash" || a.path == "/sigil/v1/tokens";
    if (d.level >= audit::Level::kRequest && !sensitive && !req.body().empty()) {
      if (std::optional<Json> in = AuditBody(req, a)) {
        auditor_->Redact(&*in);
        if (d.omit_managed_fields && in->is_object() && in->contains("metadata")) (*in)["metadata"].erase("managedFields");
        ev["requestObject"] = std::move(*in);
      }
    }
    if (d.level == audit::Level::kRequestResponse && !sensitive && body.is_object()) {
      auditor_->Redact(&body);
      if (d.omit_managed_fields && body.contains("metadata")) body["metadata"].erase("managedFields");
      ev["responseObject"] = std::move(body);
    }
    Status w = write(audit::Stage::kResponseComplete);
    if (!w.ok()) {
      if (!mutating) return audit_refusal();  // a read's answer does not leave unrecorded
      log::Error("audit: a completed change could not be recorded (its RequestReceived was)", {{"audit_id", ev["auditID"].get<std::string>()}});
    }
    return res;
  }

  std::optional<http::Response> Handle(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who,
                                       const std::optional<ApiError>& refused) {
    try {
      if (refused) return Fail(req, *refused);
      if (IsWatch(req)) return Watch(req, start_stream);
      if (req.target().starts_with("/apis/authentication.k8s.io")) return Authentication(req, who);
      if (req.target().starts_with("/apis/authorization.k8s.io")) return Authorization(req, who);
      return Route(req, who);
    } catch (const nlohmann::json::exception& e) {
      // nlohmann's messages can quote input: never pass them on.
      log::Warn("kubernetes api: unexpected JSON error", {{"id", e.id}});
      return Fail(req, BadRequest("the request body could not be processed"));
    }
  }

  static std::string MicroTime() {
    auto now = std::chrono::system_clock::now();
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
    std::string t = FormatRfc3339(std::chrono::time_point_cast<Clock::TimePoint::duration>(now));
    char frac[24];
    std::snprintf(frac, sizeof frac, ".%06lld", static_cast<long long>(us));
    return t.substr(0, t.size() - 1) + frac + "Z";
  }

  // An audit.k8s.io/v1 Event for this request (stage and outcome are filled in per stage).
  static Json AuditEvent(const http::Request& req, const authz::Attributes& a, const Identity* who, const Identity* subject,
                         const std::string& remote, audit::Level level, bool allowed) {
    auto user_info = [](const Identity& id) {
      Json u = {{"username", id.user}, {"groups", id.groups}};
      if (!id.uid.empty()) u["uid"] = id.uid;
      if (!id.extra.empty()) u["extra"] = id.extra;
      return u;
    };
    std::string now = MicroTime();
    Json ev = {{"kind", "Event"}, {"apiVersion", "audit.k8s.io/v1"}, {"level", audit::LevelName(level)},
               {"auditID", crypto::RandomUuid()}, {"requestURI", std::string(req.target())}, {"verb", a.verb},
               {"user", who ? user_info(*who) : Json{{"username", "system:anonymous"}, {"groups", {"system:unauthenticated"}}}},
               {"sourceIPs", {remote.substr(0, remote.rfind(':'))}}, {"requestReceivedTimestamp", now}, {"stageTimestamp", now},
               {"annotations", {{"authorization.k8s.io/decision", allowed ? "allow" : "forbid"}}}};
    if (subject != nullptr && subject != who) ev["impersonatedUser"] = user_info(*subject);
    auto ua = req.find(boost::beast::http::field::user_agent);
    if (ua != req.end()) ev["userAgent"] = std::string(ua->value());
    if (a.resource_request) {
      Json ref = {{"resource", a.resource}, {"apiVersion", "v1"}};
      if (!a.namespace_.empty()) ref["namespace"] = a.namespace_;
      if (!a.name.empty()) ref["name"] = a.name;
      if (!a.api_group.empty()) ref["apiGroup"] = a.api_group;
      if (!a.subresource.empty()) ref["subresource"] = a.subresource;
      ev["objectRef"] = ref;
    }
    return ev;
  }

  // The request body as an object, for Request-level audit (JSON, apply YAML or protobuf).
  static std::optional<Json> AuditBody(const http::Request& req, const authz::Attributes& a) {
    std::string_view body(req.body().data(), req.body().size());
    auto it = req.find(boost::beast::http::field::content_type);
    std::string ct = it == req.end() ? "application/json" : std::string(it->value());
    ct = ct.substr(0, ct.find(';'));
    if (ct == kProtobufContentType) {
      static const std::map<std::string, std::string> kKinds = {
          {"secrets", "Secret"}, {"namespaces", "Namespace"}, {"roles", "Role"}, {"clusterroles", "ClusterRole"},
          {"rolebindings", "RoleBinding"}, {"clusterrolebindings", "ClusterRoleBinding"},
          {"selfsubjectaccessreviews", "SelfSubjectAccessReview"}, {"selfsubjectrulesreviews", "SelfSubjectRulesReview"}};
      auto k = kKinds.find(a.resource);
      if (k == kKinds.end()) return std::nullopt;
      auto j = DecodeProtobufObject(body, k->second);
      if (!j.ok()) return std::nullopt;
      return std::move(j).value();
    }
    if (ct == "application/apply-patch+yaml") {
      auto j = YamlToJson(body);
      if (!j.ok()) return std::nullopt;
      return std::move(j).value();
    }
    if (!DepthOk(body)) return std::nullopt;
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded()) return std::nullopt;
    return j;
  }

  // Impersonation (kube-apiserver's Impersonate-User, -Group, -Uid and -Extra-<key> headers, as
  // kubectl --as / --as-group send them): each requested attribute needs the `impersonate` verb
  // on users (or the service account), groups, uids or userextras/<key>. Sets *impersonating
  // and *out when the request impersonates; returns the error to answer, if any.
  std::optional<ApiError> Impersonate(const http::Request& req, const Identity& who, Identity* out, bool* impersonating) const {
    std::optional<std::string> user, uid;
    std::vector<std::string> groups;
    std::map<std::string, std::vector<std::string>> extra;
    for (const auto& f : req) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
      std::string value(f.value());
      if (name == "impersonate-user") {
        user = value;
      } else if (name == "impersonate-group") {
        groups.push_back(value);
      } else if (name == "impersonate-uid") {
        uid = value;
      } else if (name.starts_with("impersonate-extra-")) {
        extra[PercentDecode(name.substr(18), false)].push_back(value);
      }
    }
    if (!user && groups.empty() && !uid && extra.empty()) return std::nullopt;
    if (!user) return BadRequest("requested impersonation of groups, uid or extra without impersonating a user");
    if (auto e = MayActAs(who, *user, groups, uid, extra)) return e;
    const std::string sa_prefix = "system:serviceaccount:";
    std::string sa_ns;
    if (user->starts_with(sa_prefix) && user->find(':', sa_prefix.size()) != std::string::npos) {
      sa_ns = user->substr(sa_prefix.size(), user->find(':', sa_prefix.size()) - sa_prefix.size());
    }
    out->user = *user;
    out->uid = uid.value_or("");
    out->groups = groups;
    if (!sa_ns.empty() && groups.empty()) out->groups = {"system:serviceaccounts", "system:serviceaccounts:" + sa_ns};
    if (*user != "system:anonymous" && std::find(out->groups.begin(), out->groups.end(), "system:authenticated") == out->groups.end()) {
      out->groups.push_back("system:authenticated");
    }
    out->extra = extra;
    out->method = "impersonation";
    out->impersonator = std::make_shared<const Identity>(who);
    *impersonating = true;
    return std::nullopt;
  }

  // Whether `who` may act as `user` with `groups` (and uid, extras): the `impersonate` verb on
  // each, as kube-apiserver checks impersonation. Also what issuing a token for them requires.
  std::optional<ApiError> MayActAs(const Identity& who, const std::string& user, const std::vector<std::string>& groups,
                                   const std::optional<std::string>& uid,
                                   const std::map<std::string, std::vector<std::string>>& extra) const {
    auto check = [&](authz::Attributes a) -> std::optional<ApiError> {
      a.verb = "impersonate";
      if (authorizer_->Allows(who, a)) return std::nullopt;
      return Forbidden(a, &who);
    };
    const std::string sa_prefix = "system:serviceaccount:";
    if (user.starts_with(sa_prefix) && user.find(':', sa_prefix.size()) != std::string::npos) {
      size_t colon = user.find(':', sa_prefix.size());
      if (auto e = check({"", true, "", "serviceaccounts", "", user.substr(sa_prefix.size(), colon - sa_prefix.size()),
                          user.substr(colon + 1), ""})) {
        return e;
      }
    } else if (auto e = check({"", true, "", "users", "", "", user, ""})) {
      return e;
    }
    for (const std::string& g : groups) {
      if (auto e = check({"", true, "", "groups", "", "", g, ""})) return e;
    }
    if (uid) {
      if (auto e = check({"", true, "authentication.k8s.io", "uids", "", "", *uid, ""})) return e;
    }
    for (const auto& [k, values] : extra) {
      for (const std::string& v : values) {
        if (auto e = check({"", true, "authentication.k8s.io", "userextras", k, "", v, ""})) return e;
      }
    }
    return std::nullopt;
  }

  // The request as RBAC sees it (kube-apiserver's RequestInfoResolver, for the paths sigil
  // serves): /api/v1/... and /apis/<group>/<version>/... are resource requests, sigil's history
  // paths are the subresources secrets/versions (get) and secrets/rollback (create), anything
  // else is a non-resource request on its path.
  static authz::Attributes RequestAttributes(const http::Request& req) {
    Path p = SplitPath(req.target());
    auto q = ParseQuery(req.target());
    std::vector<std::string> s = p.seg;
    authz::Attributes a;
    std::string method(req.method_string());
    std::transform(method.begin(), method.end(), method.begin(), [](unsigned char c) { return std::tolower(c); });
    size_t start = 0;
    if (s.size() >= 3 && s[0] == "api") {
      start = 2;
    } else if (s.size() >= 4 && s[0] == "apis") {
      a.api_group = s[1];
      start = 3;
    } else if (s.size() >= 7 && s[0] == "sigil" && s[1] == "v1" && s[2] == "namespaces" && s[4] == "secrets") {
      a.namespace_ = s[3];
      a.resource = "secrets";
      a.name = s[5];
      a.subresource = s[6];
      a.verb = s[6] == "rollback" ? "create" : (method == "get" ? "get" : method);
      return a;
    } else {
      a.resource_request = false;
      a.verb = method == "head" ? "get" : method;
      a.path = std::string(req.target().substr(0, req.target().find('?')));
      return a;
    }
    std::vector<std::string> rest(s.begin() + static_cast<long>(start), s.end());
    bool watch = ParseBool(Param(q, "watch"));
    if (!rest.empty() && rest[0] == "watch") {
      watch = true;
      rest.erase(rest.begin());
    }
    if (rest.size() >= 3 && rest[0] == "namespaces") {
      a.namespace_ = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    } else if (rest.size() == 2 && rest[0] == "namespaces") {
      a.namespace_ = rest[1];  // a namespace is in itself, as kube-apiserver has it
    }
    if (!rest.empty()) a.resource = rest[0];
    if (rest.size() >= 2) a.name = rest[1];
    if (rest.size() >= 3) a.subresource = rest[2];
    if (method == "get" || method == "head") {
      a.verb = watch ? "watch" : (a.name.empty() ? "list" : "get");
    } else if (method == "post") {
      a.verb = "create";
    } else if (method == "put") {
      a.verb = "update";
    } else if (method == "delete") {
      a.verb = a.name.empty() ? "deletecollection" : "delete";
    } else {
      a.verb = method;
    }
    return a;
  }

  // kube-apiserver's 403 wording for an RBAC denial.
  static ApiError Forbidden(const authz::Attributes& a, const Identity* who) {
    std::string user = who ? who->user : "system:anonymous";
    if (!a.resource_request) {
      return ApiError{403, "Forbidden", "forbidden: User \"" + user + "\" cannot " + a.verb + " path \"" + a.path + "\"", Json::object()};
    }
    std::string resource = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    std::string qualified = a.api_group.empty() ? a.resource : a.resource + "." + a.api_group;
    std::string m = qualified + (a.name.empty() ? "" : " \"" + a.name + "\"") + " is forbidden: User \"" + user + "\" cannot " + a.verb +
                    " resource \"" + resource + "\" in API group \"" + a.api_group + "\"" +
                    (a.namespace_.empty() ? " at the cluster scope" : " in the namespace \"" + a.namespace_ + "\"");
    Json details = {{"kind", a.resource}};
    if (!a.name.empty()) details["name"] = a.name;
    if (!a.api_group.empty()) details["group"] = a.api_group;
    return ApiError{403, "Forbidden", m, details};
  }

  Status EnsureDefaultNamespaces() {
    for (const char* ns : {"default", "kube-system", "kube-public"}) {
      SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> existing, store_->Get(NsKey(ns)));
      if (existing) continue;
      Json obj = NewNamespace(ns);
      auto r = store_->Create(NsKey(ns), SecretBytes(obj.dump()));
      if (!r.ok() && r.error().code() != StatusCode::kAlreadyExists) return r.error();
    }
    return OkStatus();
  }

 private:
  static std::string NsKey(const std::string& ns) { return "/registry/namespaces/" + ns; }
  static std::string SecretKey(const std::string& ns, const std::string& name) {
    return "/registry/secrets/" + ns + "/" + name;
  }
  std::string Now() const { return FormatRfc3339(clock_->Now()); }

  http::Response Reply(const http::Request& req, int code, const Json& body, const std::string& ct = "application/json",
                       const std::vector<std::string>& warnings = {}) {
    std::string text = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    http::Response res = http::MakeResponse(req, static_cast<http::HttpStatus>(code), ct, text);
    internal::SecureZero(text.data(), text.size());
    for (const std::string& w : warnings) {
      res.insert("Warning", "299 - " + Json(w).dump());
    }
    return res;
  }
  http::Response Fail(const http::Request& req, const ApiError& e) { return Reply(req, e.code, e.ToJson()); }
  http::Response FailStatus(const http::Request& req, const Status& s) {
    switch (s.code()) {
      case StatusCode::kResourceExhausted: return Fail(req, FromStatusMessage(507, "InsufficientStorage", s.message()));
      case StatusCode::kUnavailable: return Fail(req, FromStatusMessage(503, "ServiceUnavailable", s.message()));
      case StatusCode::kDataLoss:
        log::Error("stored object failed authentication", {{"error", s.message()}});
        return Fail(req, InternalError("stored object is corrupt (see server log)"));
      default: return Fail(req, InternalError(s.message()));
    }
  }
  static bool WantsTable(const http::Request& req) {
    auto it = req.find(boost::beast::http::field::accept);
    return it != req.end() && std::string_view(it->value()).find("as=Table") != std::string_view::npos;
  }

  http::Response Route(const http::Request& req, const Identity* who) {
    Path p = SplitPath(req.target());
    auto q = ParseQuery(req.target());
    const auto& s = p.seg;
    if (p.bad) return Fail(req, BadRequest("invalid path"));
    if (s.size() == 1 && s[0] == "api") return IsGet(req) ? Api(req) : Fail(req, MethodNotAllowed());
    if (s.size() == 1 && s[0] == "apis") return IsGet(req) ? Apis(req) : Fail(req, MethodNotAllowed());
    if (s.size() == 2 && s[0] == "api" && s[1] == "v1") return IsGet(req) ? ApiV1(req) : Fail(req, MethodNotAllowed());
    if (!s.empty() && s[0] == "openapi") return OpenApi(req, s);
    if (!s.empty() && s[0] == "sigil") return SigilRoute(req, q, s, who);
    if (s.size() >= 2 && s[0] == "apis" && s[1] == kRbacGroup) return RbacRoute(req, q, s, who);
    if (s.size() < 3 || s[0] != "api" || s[1] != "v1") return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    // /api/v1/secrets (all namespaces)
    if (s.size() == 3 && s[2] == "secrets") {
      return req.method() == http::Verb::get ? ListObjects(kSecrets, req, q, "") : Fail(req, MethodNotAllowed());
    }
    if (s[2] != "namespaces") return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    if (s.size() == 3) {
      if (req.method() == http::Verb::get) return ListNamespaces(req, q);
      if (req.method() == http::Verb::post) return CreateNamespace(req, q);
      return Fail(req, MethodNotAllowed());
    }
    const std::string& ns = s[3];
    if (s.size() == 4) {
      if (req.method() == http::Verb::get) return GetNamespace(req, ns);
      if (req.method() == http::Verb::delete_) return DeleteNamespace(req, ns);
      if (req.method() == http::Verb::put || req.method() == http::Verb::patch) return WriteNamespace(req, q, ns);
      return Fail(req, MethodNotAllowed());
    }
    if (s[4] != "secrets" || s.size() > 6) return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    if (s.size() == 5) return CollectionRoute(kSecrets, req, q, ns, who);
    const std::string& name = s[5];
    if (name == "." || name == "..") return Fail(req, BadRequest("name may not be \"" + name + "\""));
    return ObjectRoute(kSecrets, req, q, ns, name, who);
  }

  http::Response CollectionRoute(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q,
                                 const std::string& ns, const Identity* who) {
    if (req.method() == http::Verb::get) return ListObjects(t, req, q, ns);
    if (req.method() == http::Verb::post) return CreateObject(t, req, q, ns, who);
    if (req.method() == http::Verb::delete_) return DeleteCollection(t, req, q, ns);
    return Fail(req, MethodNotAllowed());
  }

  http::Response ObjectRoute(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q,
                             const std::string& ns, const std::string& name, const Identity* who) {
    switch (req.method()) {
      case http::Verb::get: return GetObject(t, req, ns, name);
      case http::Verb::put: return UpdateObject(t, who, req, q, ns, name);
      case http::Verb::patch: return PatchObject(t, who, req, q, ns, name);
      case http::Verb::delete_: return DeleteObject(t, req, q, ns, name);
      default: return Fail(req, MethodNotAllowed());
    }
  }

  // /apis/rbac.authorization.k8s.io[/v1[/...]]: discovery, then clusterroles and
  // clusterrolebindings at the cluster scope, roles and rolebindings in namespaces (and listed
  // across all of them).
  http::Response RbacRoute(const http::Request& req, const std::map<std::string, std::string>& q, const std::vector<std::string>& s,
                           const Identity* who) {
    auto not_found = [&] { return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource")); };
    if (auto d = GroupDiscovery(req, s, kRbacGroup, RbacResources(false))) return std::move(*d);
    if (s[2] != "v1") return not_found();
    if (s[3] == "namespaces") {
      if (s.size() < 6 || s.size() > 7) return not_found();
      const ResourceType* t = RbacType(s[5]);
      if (t == nullptr || !t->namespaced) return not_found();
      if (s.size() == 6) return CollectionRoute(*t, req, q, s[4], who);
      return ObjectRoute(*t, req, q, s[4], s[6], who);
    }
    const ResourceType* t = RbacType(s[3]);
    if (t == nullptr || s.size() > 5) return not_found();
    if (t->namespaced) {  // /apis/rbac.authorization.k8s.io/v1/roles: every namespace's, read only
      if (s.size() != 4) return not_found();
      return req.method() == http::Verb::get ? ListObjects(*t, req, q, "") : Fail(req, MethodNotAllowed());
    }
    if (s.size() == 4) return CollectionRoute(*t, req, q, "", who);
    return ObjectRoute(*t, req, q, "", s[4], who);
  }

  static bool IsGet(const http::Request& req) { return req.method() == http::Verb::get; }

  // ---- discovery and OpenAPI --------------------------------------------------------------

  static bool WantsAggregated(const http::Request& req) {
    auto it = req.find(boost::beast::http::field::accept);
    return it != req.end() && std::string_view(it->value()).find("as=APIGroupDiscoveryList") != std::string_view::npos &&
           std::string_view(it->value()).find("v=v2;") != std::string_view::npos;
  }

  static Json SecretsVerbs() {
    return Json::array({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"});
  }
  static Json NamespaceVerbs() { return Json::array({"create", "delete", "get", "list", "patch", "update", "watch"}); }

  http::Response Api(const http::Request& req) {
    if (WantsAggregated(req)) {
      Json resources = Json::array();
      resources.push_back({{"resource", "namespaces"}, {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "Namespace"}}},
                           {"scope", "Cluster"}, {"singularResource", "namespace"}, {"verbs", NamespaceVerbs()}, {"shortNames", {"ns"}}});
      resources.push_back({{"resource", "secrets"}, {"responseKind", {{"group", ""}, {"version", "v1"}, {"kind", "Secret"}}},
                           {"scope", "Namespaced"}, {"singularResource", "secret"}, {"verbs", SecretsVerbs()}});
      Json doc = {{"kind", "APIGroupDiscoveryList"}, {"apiVersion", "apidiscovery.k8s.io/v2"}, {"metadata", Json::object()},
                  {"items", Json::array({{{"metadata", {{"name", ""}, {"creationTimestamp", nullptr}}},
                                          {"versions", Json::array({{{"version", "v1"}, {"resources", resources}, {"freshness", "Current"}}})}}})}};
      return Reply(req, 200, doc, kAggregatedContentType);
    }
    return Reply(req, 200, Json{{"kind", "APIVersions"}, {"versions", {"v1"}},
                                {"serverAddressByClientCIDRs", Json::array({{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", ""}}})}});
  }

  // The groups served under /apis: authentication.k8s.io/v1 (SelfSubjectReview, TokenReview).
  static Json AuthnResources(bool aggregated) {
    return ReviewResources("authentication.k8s.io", {{"selfsubjectreviews", "SelfSubjectReview"}, {"tokenreviews", "TokenReview"}},
                           aggregated);
  }


  http::Response Apis(const http::Request& req) {
    if (WantsAggregated(req)) {
      auto item = [](const char* group, Json resources) {
        return Json{{"metadata", {{"name", group}, {"creationTimestamp", nullptr}}},
                    {"versions", Json::array({{{"version", "v1"}, {"resources", std::move(resources)}, {"freshness", "Current"}}})}};
      };
      Json items = Json::array({item("authentication.k8s.io", AuthnResources(true)), item("authorization.k8s.io", AuthzResources(true)),
                                item(kRbacGroup, RbacResources(true))});
      return Reply(req, 200, Json{{"kind", "APIGroupDiscoveryList"}, {"apiVersion", "apidiscovery.k8s.io/v2"},
                                  {"metadata", Json::object()}, {"items", items}},
                   kAggregatedContentType);
    }
    return Reply(req, 200, Json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", Json::array({GroupDoc("authentication.k8s.io"), GroupDoc("authorization.k8s.io"), GroupDoc(kRbacGroup)})}});
  }

  static Json RbacResources(bool aggregated) {
    Json out = Json::array();
    const Json verbs = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"};
    for (const ResourceType* t : kRbacTypes) {
      std::string singular = t->plural.substr(0, t->plural.size() - 1);
      if (aggregated) {
        out.push_back({{"resource", t->plural}, {"responseKind", {{"group", kRbacGroup}, {"version", "v1"}, {"kind", t->kind}}},
                       {"scope", t->namespaced ? "Namespaced" : "Cluster"}, {"singularResource", singular}, {"verbs", verbs}});
      } else {
        out.push_back({{"name", t->plural}, {"singularName", singular}, {"namespaced", t->namespaced}, {"kind", t->kind}, {"verbs", verbs}});
      }
    }
    return out;
  }
  // An API group's entry in /apis (and, with kind and apiVersion, its /apis/<group> document).
  static Json GroupDoc(const std::string& name) {
    Json v = {{"groupVersion", name + "/v1"}, {"version", "v1"}};
    return Json{{"name", name}, {"versions", Json::array({v})}, {"preferredVersion", v}};
  }

  // GET /apis/<group> and /apis/<group>/v1 for a served group; nullopt for any other path.
  std::optional<http::Response> GroupDiscovery(const http::Request& req, const std::vector<std::string>& s,
                                               const std::string& group, const Json& resources) {
    if (s.size() == 2 || (s.size() == 3 && s[2] == "v1")) {
      if (!IsGet(req)) return Fail(req, MethodNotAllowed());
      if (s.size() == 3) {
        return Reply(req, 200, Json{{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", group + "/v1"},
                                    {"resources", resources}});
      }
      Json g = GroupDoc(group);
      g["kind"] = "APIGroup";
      g["apiVersion"] = "v1";
      return Reply(req, 200, g);
    }
    return std::nullopt;
  }

  // The create-only review resources of authentication.k8s.io and authorization.k8s.io.
  static Json ReviewResources(const std::string& group, std::initializer_list<std::pair<const char*, const char*>> kinds,
                              bool aggregated) {
    Json out = Json::array();
    for (const auto& [plural, kind] : kinds) {
      std::string singular = std::string(plural).substr(0, std::string(plural).size() - 1);
      if (aggregated) {
        out.push_back({{"resource", plural}, {"responseKind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
                       {"scope", "Cluster"}, {"singularResource", singular}, {"verbs", {"create"}}});
      } else {
        out.push_back({{"name", plural}, {"singularName", singular}, {"namespaced", false}, {"kind", kind}, {"verbs", {"create"}}});
      }
    }
    return out;
  }




  // /apis/authentication.k8s.io[/v1[/selfsubjectreviews|tokenreviews]]
  http::Response Authentication(const http::Request& req, const Identity* who) {
    Path p = SplitPath(req.target());
    const auto& s = p.seg;
    if (auto d = GroupDiscovery(req, s, "authentication.k8s.io", AuthnResources(false))) return std::move(*d);
    if (s.size() != 4 || s[2] != "v1" || (s[3] != "selfsubjectreviews" && s[3] != "tokenreviews")) {
      return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    }
    if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
    auto user_info = [](const Identity& id) {
      Json u = {{"username", id.user}, {"uid", id.uid}, {"groups", id.groups}};
      if (!id.extra.empty()) u["extra"] = id.extra;
      return u;
    };
    if (s[3] == "selfsubjectreviews") {
      // The body carries nothing to read (kubectl sends an empty protobuf or JSON object).
      Json out = {{"kind", "SelfSubjectReview"}, {"apiVersion", "authentication.k8s.io/v1"},
                  {"metadata", {{"creationTimestamp", nullptr}}}, {"status", {{"userInfo", who ? user_info(*who) : Json::object()}}}};
      return Reply(req, 201, out);
    }
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    const Json& in = body.json;
    if (!in.is_object() || !in.value("spec", Json::object()).is_object() || !in.value("spec", Json::object()).value("token", Json()).is_string()) {
      return Fail(req, Invalid("TokenReview", "", {{FieldError::Type::kRequired, "spec.token", "", ""}}));
    }
    std::string token = in["spec"]["token"].get<std::string>();
    Json status = {{"authenticated", false}};
    if (token_reviewer_) {
      std::string why;
      auto id = token_reviewer_(token, &why);
      if (!id.ok()) {
        status["error"] = "token review failed: " + id.error().message();
      } else if (*id) {
        status = {{"authenticated", true}, {"user", user_info(**id)}};
      } else {
        status["error"] = why.empty() ? "invalid bearer token" : why;
      }
    }
    internal::SecureZero(token.data(), token.size());
    if (in["spec"].contains("audiences")) status["audiences"] = in["spec"]["audiences"];
    return Reply(req, 201, Json{{"kind", "TokenReview"}, {"apiVersion", "authentication.k8s.io/v1"},
                                {"metadata", {{"creationTimestamp", nullptr}}}, {"spec", {{"audiences", in["spec"].value("audiences", Json::array())}}},
                                {"status", status}});
  }

  // ---- authorization.k8s.io/v1: access reviews ---------------------------------------------

  static Json AuthzResources(bool aggregated) {
    return ReviewResources("authorization.k8s.io",
                           {{"selfsubjectaccessreviews", "SelfSubjectAccessReview"}, {"selfsubjectrulesreviews", "SelfSubjectRulesReview"},
                            {"subjectaccessreviews", "SubjectAccessReview"}},
                           aggregated);
  }



  // The attributes a review asks about (SubjectAccessReviewSpec's resourceAttributes or
  // nonResourceAttributes). Returns false when neither is given.
  static bool ReviewAttributes(const Json& spec, authz::Attributes* a) {
    auto str = [](const Json& o, const char* k) { return o.contains(k) && o[k].is_string() ? o[k].get<std::string>() : std::string(); };
    if (spec.contains("resourceAttributes") && spec["resourceAttributes"].is_object()) {
      const Json& r = spec["resourceAttributes"];
      a->resource_request = true;
      a->verb = str(r, "verb");
      a->api_group = str(r, "group");
      a->resource = str(r, "resource");
      a->subresource = str(r, "subresource");
      a->namespace_ = str(r, "namespace");
      a->name = str(r, "name");
      return true;
    }
    if (spec.contains("nonResourceAttributes") && spec["nonResourceAttributes"].is_object()) {
      a->resource_request = false;
      a->path = str(spec["nonResourceAttributes"], "path");
      a->verb = str(spec["nonResourceAttributes"], "verb");
      return true;
    }
    return false;
  }

  // /apis/authorization.k8s.io[/v1[/selfsubjectaccessreviews|selfsubjectrulesreviews|
  // subjectaccessreviews]]: kube-apiserver's answers, from the same RBAC decisions requests get.
  http::Response Authorization(const http::Request& req, const Identity* who) {
    Path p = SplitPath(req.target());
    const auto& s = p.seg;
    if (auto d = GroupDiscovery(req, s, "authorization.k8s.io", AuthzResources(false))) return std::move(*d);
    static const std::map<std::string, std::string> kKinds = {{"selfsubjectaccessreviews", "SelfSubjectAccessReview"},
                                                              {"selfsubjectrulesreviews", "SelfSubjectRulesReview"},
                                                              {"subjectaccessreviews", "SubjectAccessReview"}};
    if (s.size() != 4 || s[2] != "v1" || !kKinds.count(s[3])) {
      return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    }
    if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
    const std::string& kind = kKinds.at(s[3]);
    auto body = DecodeBody(req, kind);
    if (!body.ok) return Fail(req, body.error);
    const Json& in = body.json;
    if (!in.is_object() || (in.contains("kind") && in["kind"] != kind) ||
        (in.contains("apiVersion") && in["apiVersion"] != "authorization.k8s.io/v1")) {
      return Fail(req, BadRequest("the body is not an authorization.k8s.io/v1 " + kind));
    }
    Json spec = in.value("spec", Json::object());
    if (!spec.is_object()) return Fail(req, BadRequest("spec must be an object"));
    Json out = {{"kind", kind}, {"apiVersion", "authorization.k8s.io/v1"}, {"metadata", {{"creationTimestamp", nullptr}}}, {"spec", spec}};
    if (authorizer_ == nullptr) {
      return Fail(req, FromStatusMessage(503, "ServiceUnavailable", "authorization is not configured on this server"));
    }
    if (kind == "SelfSubjectRulesReview") {
      std::string ns = spec.value("namespace", "");
      if (!spec.contains("namespace") || !spec["namespace"].is_string()) {
        return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.namespace", "", ""}}));
      }
      Json resource_rules = Json::array(), non_resource_rules = Json::array();
      for (const authz::PolicyRule& r : authorizer_->RulesFor(*who, ns)) {
        if (!r.non_resource_urls.empty()) {
          non_resource_rules.push_back({{"verbs", r.verbs}, {"nonResourceURLs", r.non_resource_urls}});
        } else {
          Json rr = {{"verbs", r.verbs}, {"apiGroups", r.api_groups}, {"resources", r.resources}};
          if (!r.resource_names.empty()) rr["resourceNames"] = r.resource_names;
          resource_rules.push_back(rr);
        }
      }
      out["status"] = {{"resourceRules", resource_rules}, {"nonResourceRules", non_resource_rules}, {"incomplete", false}};
      return Reply(req, 201, out);
    }
    Identity subject;
    if (kind == "SelfSubjectAccessReview") {
      subject = *who;
    } else {
      // SubjectAccessReview: about the user and groups named in the spec (as a webhook
      // authorizer or kube-rbac-proxy asks), never about the caller.
      if (!spec.contains("user") && !spec.contains("groups")) {
        return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.user", "", "at least one of user or group must be specified"}}));
      }
      subject.user = spec.value("user", "");
      subject.uid = spec.value("uid", "");
      if (spec.contains("groups") && spec["groups"].is_array()) {
        for (const Json& g : spec["groups"]) {
          if (g.is_string()) subject.groups.push_back(g.get<std::string>());
        }
      }
    }
    authz::Attributes a;
    if (!ReviewAttributes(spec, &a)) {
      return Fail(req, Invalid(kind, "", {{FieldError::Type::kRequired, "spec.resourceAttributes", "",
                                           "exactly one of nonResourceAttributes or resourceAttributes must be specified"}}));
    }
    bool allowed = authorizer_->Allows(subject, a);
    out["status"] = {{"allowed", allowed}};
    return Reply(req, 201, out);
  }

  http::Response ApiV1(const http::Request& req) {
    Json resources = Json::array();
    resources.push_back({{"name", "namespaces"}, {"singularName", "namespace"}, {"namespaced", false}, {"kind", "Namespace"},
                         {"verbs", NamespaceVerbs()}, {"shortNames", {"ns"}}});
    resources.push_back({{"name", "secrets"}, {"singularName", "secret"}, {"namespaced", true}, {"kind", "Secret"},
                         {"verbs", SecretsVerbs()}});
    return Reply(req, 200, Json{{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", "v1"}, {"resources", resources}});
  }

  // The minimal OpenAPI v3 kubectl needs per group-version: each kind's PATCH operation with
  // the fieldValidation parameter, which tells kubectl the server validates fields itself.
  static Json OpenApiDoc(const std::string& gv) {
    Json param = {{"name", "fieldValidation"}, {"in", "query"}, {"schema", {{"type", "string"}}},
                  {"description", "Strict, Warn or Ignore: how the server treats unknown and duplicate fields"}};
    auto patch = [&](const std::string& group, const std::string& kind) {
      return Json{{"patch", {{"x-kubernetes-group-version-kind", {{"group", group}, {"version", "v1"}, {"kind", kind}}},
                             {"x-kubernetes-action", "patch"}, {"parameters", Json::array({param})}, {"responses", Json::object()}}}};
    };
    Json paths = Json::object();
    if (gv == "api/v1") {
      paths["/api/v1/namespaces/{namespace}/secrets/{name}"] = patch("", "Secret");
      paths["/api/v1/namespaces/{name}"] = patch("", "Namespace");
    } else {
      for (const ResourceType* t : kRbacTypes) {
        std::string path = "/apis/" + std::string(kRbacGroup) + "/v1/" + (t->namespaced ? "namespaces/{namespace}/" : "") + t->plural + "/{name}";
        paths[path] = patch(kRbacGroup, t->kind);
      }
    }
    return Json{{"openapi", "3.0.0"}, {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}}, {"paths", paths},
                {"components", {{"schemas", Json::object()}}}};
  }

  http::Response OpenApi(const http::Request& req, const std::vector<std::string>& s) {
    if (!IsGet(req)) return Fail(req, MethodNotAllowed());
    const std::string rbac_gv = "apis/" + std::string(kRbacGroup) + "/v1";
    if (s.size() == 2 && s[1] == "v3") {
      Json paths = Json::object();
      for (const std::string& gv : {std::string("api/v1"), rbac_gv}) {
        std::string hash = HexEncode(crypto::Sha256(OpenApiDoc(gv).dump())).substr(0, 32);
        paths[gv] = {{"serverRelativeURL", "/openapi/v3/" + gv + "?hash=" + hash}};
      }
      return Reply(req, 200, Json{{"paths", paths}});
    }
    if (s.size() == 4 && s[1] == "v3" && s[2] == "api" && s[3] == "v1") return Reply(req, 200, OpenApiDoc("api/v1"));
    if (s.size() == 5 && s[1] == "v3" && s[2] == "apis" && s[3] == kRbacGroup && s[4] == "v1") return Reply(req, 200, OpenApiDoc(rbac_gv));
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }


  // ---- namespaces ---------------------------------------------------------------------------

  Json NewNamespace(const std::string& name) {
    return Json{{"kind", "Namespace"}, {"apiVersion", "v1"},
                {"metadata", {{"name", name}, {"uid", NewUid()}, {"creationTimestamp", Now()},
                              {"labels", {{"kubernetes.io/metadata.name", name}}}}},
                {"spec", {{"finalizers", {"kubernetes"}}}}, {"status", {{"phase", "Active"}}}};
  }

  static Json WithRv(Json obj, int64_t rev) {
    obj["metadata"]["resourceVersion"] = std::to_string(rev);
    obj["metadata"] = OrderedMeta(obj["metadata"]);
    return obj;
  }

  Result<bool> NamespaceExists(const std::string& ns) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(NsKey(ns)));
    return o.has_value();
  }

  http::Response CreateNamespace(const http::Request& req, const std::map<std::string, std::string>& q) {
    auto body = DecodeBody(req, "Namespace");
    if (!body.ok) return Fail(req, body.error);
    const Json& in = body.json;
    if (!in.is_object() || !in.value("metadata", Json::object()).is_object()) return Fail(req, BadRequest("Namespace in version \"v1\" cannot be handled as a Namespace: the body is not an object"));
    std::string name = in["metadata"].value("name", "");
    FieldErrors errs;
    if (name.empty()) {
      errs.push_back({FieldError::Type::kRequired, "metadata.name", "", "name or generateName is required"});
    } else {
      for (const std::string& e : IsDns1123Label(name)) errs.push_back({FieldError::Type::kInvalid, "metadata.name", name, e});
    }
    Json obj = NewNamespace(name);
    if (in["metadata"].contains("labels") && in["metadata"]["labels"].is_object()) {
      for (const auto& [k, v] : in["metadata"]["labels"].items()) obj["metadata"]["labels"][k] = v;
      obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
    }
    if (in["metadata"].contains("annotations") && in["metadata"]["annotations"].is_object()) {
      obj["metadata"]["annotations"] = in["metadata"]["annotations"];
    }
    ValidateLabelsAndAnnotations(obj["metadata"], &errs);
    if (std::string v = obj["metadata"].value("annotations", Json::object()).value(kHistoryAnnotation, "");
        !v.empty() && !ParseHistoryVersions(v)) {
      errs.push_back({FieldError::Type::kInvalid, std::string("metadata.annotations[") + kHistoryAnnotation + "]", v,
                      "must be an integer from 0 to " + std::to_string(store::History::kMaxKeep)});
    }
    if (!errs.empty()) return Fail(req, Invalid("Namespace", name, errs));
    if (Param(q, "dryRun") == "All") return Reply(req, 201, WithRv(obj, store_->CurrentRevision()));
    auto rev = store_->Create(NsKey(name), SecretBytes(obj.dump()));
    if (!rev.ok()) {
      if (rev.error().code() == StatusCode::kAlreadyExists) return Fail(req, AlreadyExists("namespaces", name));
      return FailStatus(req, rev.error());
    }
    return Reply(req, 201, WithRv(obj, *rev));
  }

  http::Response GetNamespace(const http::Request& req, const std::string& ns) {
    auto o = store_->Get(NsKey(ns));
    if (!o.ok()) return FailStatus(req, o.error());
    if (!o->has_value()) return Fail(req, NotFound("namespaces", ns));
    Json obj = WithRv(Json::parse((*o)->doc.view()), (*o)->revision);
    if (WantsTable(req)) return Reply(req, 200, NamespaceTable({obj}, std::to_string((*o)->revision)), kTableContentType);
    return Reply(req, 200, obj);
  }

  http::Response ListNamespaces(const http::Request& req, const std::map<std::string, std::string>& q) {
    int64_t exact = 0;
    if (auto e = CheckListVersion(q, &exact)) return Fail(req, *e);
    auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
    if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
    auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), {"metadata.name", "status.phase"});
    if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
    auto l = store_->List("/registry/namespaces/", "", 0);
    if (!l.ok()) return FailStatus(req, l.error());
    if (exact != 0 && l->revision != exact) return Fail(req, ListTooOld());
    std::vector<Json> items;
    for (store::Object& o : l->items) {
      Json obj = WithRv(Json::parse(o.doc.view()), o.revision);
      if (!labels->Matches(StringMap(obj["metadata"].value("labels", Json::object())))) continue;
      if (!fields->Matches([&](const std::string& f) {
            return f == "metadata.name" ? obj["metadata"].value("name", "") : obj["status"].value("phase", "");
          })) {
        continue;
      }
      items.push_back(std::move(obj));
    }
    std::string rv = std::to_string(l->revision);
    if (WantsTable(req)) return Reply(req, 200, NamespaceTable(items, rv), kTableContentType);
    Json list = {{"kind", "NamespaceList"}, {"apiVersion", "v1"}, {"metadata", {{"resourceVersion", rv}}}, {"items", Json::array()}};
    for (Json& i : items) {
      i.erase("kind");
      i.erase("apiVersion");
      list["items"].push_back(std::move(i));
    }
    return Reply(req, 200, list);
  }

  Json NamespaceTable(const std::vector<Json>& items, const std::string& rv) {
    Json t = TableHeader(rv, {{"Name", "string", "name"}, {"Status", "string", ""}, {"Age", "string", ""}});
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
    for (const Json& o : items) {
      int64_t created = ParseRfc3339(o["metadata"].value("creationTimestamp", ""));
      t["rows"].push_back({{"cells", {o["metadata"].value("name", ""), o["status"].value("phase", ""), HumanDuration(now - created)}},
                           {"object", PartialMetadata(o)}});
    }
    return t;
  }

  // PUT and PATCH (merge, strategic, JSON patch, server-side apply) of a Namespace. Only labels
  // and annotations change: spec.finalizers and status belong to subresources sigil does not
  // serve, and are kept. The kubernetes.io/metadata.name label always equals the name.
  http::Response WriteNamespace(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& name) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    auto it = req.find(boost::beast::http::field::content_type);
    std::string ct = it == req.end() ? "application/json" : std::string(it->value());
    std::string base = ct.substr(0, ct.find(';'));
    bool apply = base == "application/apply-patch+yaml";
    if (req.method() == http::Verb::patch && !apply && base != "application/merge-patch+json" &&
        base != "application/strategic-merge-patch+json" && base != "application/json-patch+json") {
      return Fail(req, UnsupportedMediaType(ct));
    }
    std::string manager = Manager(req, q);
    if (apply && Param(q, "fieldManager").empty()) {
      return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch", nullptr});
    }
    auto body = DecodeBody(req, "Namespace");
    if (!body.ok) return Fail(req, body.error);
    std::vector<std::string> warnings;
    if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(NsKey(name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) return Fail(req, NotFound("namespaces", name));
      Json live = Json::parse((*o)->doc.view());
      Json current = WithRv(live, (*o)->revision);
      Json next;
      std::optional<ApplyResult> applied;
      if (req.method() == http::Verb::put || apply) {
        next = body.json;
      } else if (auto e = ApplyPatch(base, body.json, current, &next)) {
        return Fail(req, *e);
      }
      if (!next.is_object() || !next.value("metadata", Json::object()).is_object()) {
        return Fail(req, BadRequest("Namespace in version \"v1\" cannot be handled as a Namespace: the body is not an object"));
      }
      if (next.contains("kind") && next["kind"] != "Namespace") return Fail(req, BadRequest("the kind in the data does not match the expected kind (Namespace)"));
      const Json meta = next.value("metadata", Json::object());
      if (meta.contains("name") && meta["name"] != name) {
        return Fail(req, BadRequest("the name of the object does not match the name on the URL (" + name + ")"));
      }
      if (meta.contains("resourceVersion") && meta["resourceVersion"].is_string() && !meta["resourceVersion"].get<std::string>().empty() &&
          meta["resourceVersion"] != std::to_string((*o)->revision)) {
        return Fail(req, ModifiedConflict("namespaces", name));
      }
      for (const char* f : {"labels", "annotations"}) {
        if (meta.contains(f) && !meta[f].is_null()) {
          if (!meta[f].is_object()) return Fail(req, BadRequest(std::string("metadata.") + f + " must be a map of strings"));
          for (const auto& [k, v] : meta[f].items()) {
            if (!v.is_string()) return Fail(req, BadRequest(std::string("metadata.") + f + " must be a map of strings"));
          }
        }
      }
      Json obj = live;
      std::vector<ManagedEntry> entries = ParseManagedFields(live["metadata"].value("managedFields", Json::array()));
      if (apply) {
        Json config = {{"metadata", {{"labels", meta.value("labels", Json::object())}, {"annotations", meta.value("annotations", Json::object())}}}};
        ApplyResult r = Apply(&live, entries, config, ObjectFields(config, false), manager, ParseBool(Param(q, "force")), Now());
        if (!r.conflicts.empty()) return Fail(req, ApplyConflictError(r.conflicts));
        obj = std::move(r.obj);
        entries = std::move(r.entries);
      } else {
        for (const char* f : {"labels", "annotations"}) {
          if (meta.contains(f) && meta[f].is_object() && !meta[f].empty()) {
            obj["metadata"][f] = meta[f];
          } else {
            obj["metadata"].erase(f);
          }
        }
      }
      obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
      FieldErrors errs;
      ValidateLabelsAndAnnotations(obj["metadata"], &errs);
      if (std::string v = obj["metadata"].value("annotations", Json::object()).value(kHistoryAnnotation, "");
          !v.empty() && !ParseHistoryVersions(v)) {
        errs.push_back({FieldError::Type::kInvalid, std::string("metadata.annotations[") + kHistoryAnnotation + "]", v,
                        "must be an integer from 0 to " + std::to_string(store::History::kMaxKeep)});
      }
      if (!errs.empty()) return Fail(req, Invalid("Namespace", name, errs));
      if (!apply) RecordUpdate(&entries, &live, obj, manager, Now());
      obj["metadata"]["managedFields"] = RenderManagedFields(entries);
      if (entries.empty()) obj["metadata"].erase("managedFields");
      obj["metadata"] = OrderedMeta(obj["metadata"]);
      if (Param(q, "dryRun") == "All") {
        http::Response res = Reply(req, 200, WithRv(obj, (*o)->revision));
        AddWarnings(&res, warnings);
        return res;
      }
      auto rev = store_->Update(NsKey(name), Dump(obj), (*o)->revision);
      if (rev.ok()) {
        http::Response res = Reply(req, 200, WithRv(std::move(obj), *rev));
        AddWarnings(&res, warnings);
        return res;
      }
      if (rev.error().code() == StatusCode::kNotFound) return Fail(req, NotFound("namespaces", name));
      if (rev.error().code() != StatusCode::kAborted) return FailStatus(req, rev.error());
    }
    return Fail(req, ModifiedConflict("namespaces", name));
  }

  http::Response DeleteNamespace(const http::Request& req, const std::string& ns) {
    if (ns == "default" || ns == "kube-system" || ns == "kube-public") {
      return Fail(req, ApiError{403, "Forbidden", "namespaces \"" + ns + "\" is forbidden: this namespace may not be deleted",
                                Json{{"name", ns}, {"kind", "namespaces"}}});
    }
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(NsKey(ns));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) return Fail(req, NotFound("namespaces", ns));
      // The namespace and every secret, role and role binding in it go in one transaction: no
      // orphan survives (a namespace made again later does not inherit old grants).
      store::SideEffects cascade;
      for (const ResourceType* t : {&kSecrets, &kRoles, &kRoleBindings}) {
        auto items = store_->List(t->Prefix(ns), "", 0);
        if (!items.ok()) return FailStatus(req, items.error());
        for (const store::Object& s : items->items) cascade.deletes.push_back(s.key);
      }
      if (Status st = history_.PurgeUnder("/registry/secrets/" + ns + "/", &cascade); !st.ok()) return FailStatus(req, st);
      auto r = store_->Delete(NsKey(ns), (*o)->revision, cascade);
      if (r.ok()) {
        Json obj = WithRv(Json::parse((*o)->doc.view()), *r);
        obj["status"]["phase"] = "Terminating";
        return Reply(req, 200, obj);
      }
      if (r.error().code() == StatusCode::kNotFound) return Fail(req, NotFound("namespaces", ns));
      if (r.error().code() != StatusCode::kAborted) return FailStatus(req, r.error());
    }
    return Fail(req, ModifiedConflict("namespaces", ns));
  }

  // ---- request bodies -----------------------------------------------------------------------

  struct Decoded {
    bool ok = false;
    Json json;
    ApiError error;
    std::vector<std::string> duplicates;  // JSON fields given twice ("metadata.name"); the last one wins
  };

  // fieldValidation for fields given twice, as for unknown fields: Strict refuses (400), Warn
  // (the default) adds warnings, Ignore ignores.
  static std::optional<ApiError> CheckDuplicates(const Decoded& d, const std::map<std::string, std::string>& q,
                                                 std::vector<std::string>* warnings) {
    if (d.duplicates.empty()) return std::nullopt;
    std::string fv = Param(q, "fieldValidation");
    if (fv == "Ignore") return std::nullopt;
    if (fv == "Strict") {
      std::string m = "strict decoding error: ";
      for (size_t i = 0; i < d.duplicates.size(); ++i) m += (i ? ", " : "") + std::string("duplicate field \"") + d.duplicates[i] + "\"";
      return BadRequest(m);
    }
    for (const std::string& f : d.duplicates) warnings->push_back("duplicate field \"" + f + "\"");
    return std::nullopt;
  }
  static void AddWarnings(http::Response* res, const std::vector<std::string>& warnings) {
    for (const std::string& w : warnings) res->insert("Warning", "299 - " + Json(w).dump());
  }

  Decoded DecodeBody(const http::Request& req, std::string_view kind = "") {
    Decoded d;
    auto it = req.find(boost::beast::http::field::content_type);
    std::string ct = it == req.end() ? "application/json" : std::string(it->value());
    std::string base = ct.substr(0, ct.find(';'));
    if (base == kProtobufContentType && !kind.empty()) {
      auto j = DecodeProtobufObject(std::string_view(req.body().data(), req.body().size()), kind);
      if (!j.ok()) {
        d.error = BadRequest(std::string(kind) + " in version \"v1\" cannot be handled as a " + std::string(kind) + ": " +
                             j.error().message());
        return d;
      }
      d.json = std::move(j).value();
      d.ok = true;
      return d;
    }
    std::string_view body(req.body().data(), req.body().size());
    if (base == "application/apply-patch+yaml") {
      auto j = YamlToJson(body);
      if (!j.ok()) {
        d.error = BadRequest(j.error().message());
        return d;
      }
      d.json = std::move(j).value();
      d.ok = true;
      return d;
    }
    if (base != "application/json" && base != "application/merge-patch+json" &&
        base != "application/strategic-merge-patch+json" && base != "application/json-patch+json") {
      d.error = UnsupportedMediaType(ct);
      return d;
    }
    if (!DepthOk(body)) {
      d.error = BadRequest("the request body is nested too deeply (more than " + std::to_string(kMaxJsonDepth) + " levels)");
      return d;
    }
    try {
      // The callback notes keys given twice in one object (nlohmann keeps the last).
      std::vector<std::set<std::string>> seen;
      std::vector<std::string> path;
      d.json = Json::parse(body, [&](int depth, nlohmann::json::parse_event_t event, Json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (event == E::object_start) {
          seen.resize(static_cast<size_t>(depth) + 1);
          seen[static_cast<size_t>(depth)].clear();
        } else if (event == E::key && depth >= 1 && static_cast<size_t>(depth) <= seen.size()) {
          const std::string& k = parsed.get_ref<const std::string&>();
          path.resize(static_cast<size_t>(depth));
          path[static_cast<size_t>(depth) - 1] = k;
          if (!seen[static_cast<size_t>(depth) - 1].insert(k).second) {
            std::string full;
            for (const std::string& e : path) full += (full.empty() ? "" : ".") + e;
            d.duplicates.push_back(full);
          }
        }
        return true;
      });
    } catch (const nlohmann::json::parse_error& e) {
      // Not e.what(): it quotes the input, which may be a secret.
      d.error = BadRequest("error decoding the request body as JSON: syntax error at byte " + std::to_string(e.byte));
      return d;
    }
    d.ok = true;
    return d;
  }

  // ---- secrets --------------------------------------------------------------------------------

  struct Prepared {
    bool ok = false;
    Json obj;
    ApiError error;
    std::vector<std::string> warnings;
  };

  // Turns a client's object into the stored form: checks types and unknown fields; for a
  // Secret decodes and re-checks base64 and merges stringData into data. Validation of values
  // happens afterwards.
  Prepared Prepare(const ResourceType& t, const Json& in, const std::string& ns, const std::string& field_validation) {
    Prepared p;
    auto bad = [&](const std::string& why) {
      p.error = BadRequest(t.kind + " in version \"v1\" cannot be handled as a " + t.kind + ": " + why);
      return p;
    };
    if (!in.is_object()) return bad("the body is not a JSON object");
    if (in.contains("apiVersion") && in["apiVersion"] != t.ApiVersion()) {
      return bad("the API version in the data (" + (in["apiVersion"].is_string() ? in["apiVersion"].get<std::string>() : "?") +
                 ") does not match the expected API version (" + t.ApiVersion() + ")");
    }
    if (in.contains("kind") && in["kind"] != t.kind) {
      return bad("the kind in the data (" + (in["kind"].is_string() ? in["kind"].get<std::string>() : "?") +
                 ") does not match the expected kind (" + t.kind + ")");
    }
    static const std::map<std::string, std::set<std::string>> kTops = {
        {"Secret", {"kind", "apiVersion", "metadata", "data", "stringData", "type", "immutable"}},
        {"Role", {"kind", "apiVersion", "metadata", "rules"}},
        {"ClusterRole", {"kind", "apiVersion", "metadata", "rules", "aggregationRule"}},
        {"RoleBinding", {"kind", "apiVersion", "metadata", "subjects", "roleRef"}},
        {"ClusterRoleBinding", {"kind", "apiVersion", "metadata", "subjects", "roleRef"}}};
    const std::set<std::string>& kTop = kTops.at(t.kind);
    static const std::set<std::string> kMeta = {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion",
                                                "generation", "creationTimestamp", "deletionTimestamp",
                                                "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences",
                                                "finalizers", "managedFields"};
    std::vector<std::string> unknown;
    for (const auto& [k, v] : in.items()) {
      if (!kTop.count(k)) unknown.push_back(k);
    }
    Json meta = in.value("metadata", Json::object());
    if (!meta.is_object()) return bad("metadata must be an object");
    for (const auto& [k, v] : meta.items()) {
      if (!kMeta.count(k)) unknown.push_back("metadata." + k);
    }
    if (!unknown.empty()) {
      if (field_validation == "Strict") {
        std::string m = "strict decoding error: ";
        for (size_t i = 0; i < unknown.size(); ++i) m += (i ? ", " : "") + std::string("unknown field \"") + unknown[i] + "\"";
        p.error = BadRequest(m);
        return p;
      }
      if (field_validation != "Ignore") {
        for (const std::string& u : unknown) p.warnings.push_back("unknown field \"" + u + "\"");
      }
    }
    for (const char* f : {"name", "generateName", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
      if (meta.contains(f) && !meta[f].is_string() && !meta[f].is_null()) return bad(std::string("metadata.") + f + " must be a string");
    }
    for (const char* f : {"labels", "annotations"}) {
      if (meta.contains(f) && !meta[f].is_null()) {
        if (!meta[f].is_object()) return bad(std::string("metadata.") + f + " must be a map of strings");
        for (const auto& [k, v] : meta[f].items()) {
          if (!v.is_string()) return bad(std::string("metadata.") + f + " must be a map of strings");
        }
      }
    }
    std::string body_ns = meta.value("namespace", "");
    if (!body_ns.empty() && body_ns != ns && t.namespaced) {
      p.error = BadRequest("the namespace of the provided object does not match the namespace sent on the request");
      return p;
    }
    meta.erase("selfLink");
    if (t.namespaced) {
      meta["namespace"] = ns;
    } else {
      meta.erase("namespace");  // kube-apiserver drops it from cluster-scoped objects
    }
    if (!t.IsSecret()) {
      if (std::string why = ShapeOfRbac(t.kind, in); !why.empty()) return bad(why);
      Json obj = {{"kind", t.kind}, {"apiVersion", t.ApiVersion()}, {"metadata", meta}};
      for (const char* f : {"rules", "aggregationRule", "subjects", "roleRef"}) {
        if (kTop.count(f) && in.contains(f) && !in[f].is_null()) obj[f] = in[f];
      }
      if (t.IsRole() && !obj.contains("rules")) obj["rules"] = nullptr;  // Go serialises an absent list as null
      p.obj = std::move(obj);
      p.ok = true;
      return p;
    }
    Json data = Json::object();
    if (in.contains("data") && !in["data"].is_null()) {
      if (!in["data"].is_object()) return bad("data must be a map of base64 strings");
      for (const auto& [k, v] : in["data"].items()) {
        if (!v.is_string()) return bad("data[" + k + "] must be a base64 string");
        if (!Base64DecodeSecret(v.get_ref<const std::string&>()).ok()) return bad("illegal base64 data in data[" + k + "]");
        data[k] = v;
      }
    }
    if (in.contains("stringData") && !in["stringData"].is_null()) {
      if (!in["stringData"].is_object()) return bad("stringData must be a map of strings");
      for (const auto& [k, v] : in["stringData"].items()) {
        if (!v.is_string()) return bad("stringData[" + k + "] must be a string");
        data[k] = Base64Encode(v.get_ref<const std::string&>());  // stringData wins, and is never stored
      }
    }
    if (in.contains("type") && !in["type"].is_string() && !in["type"].is_null()) return bad("type must be a string");
    if (in.contains("immutable") && !in["immutable"].is_boolean() && !in["immutable"].is_null()) return bad("immutable must be a boolean");
    Json obj = {{"kind", "Secret"}, {"apiVersion", "v1"}};
    obj["metadata"] = meta;
    if (in.contains("immutable") && in["immutable"].is_boolean()) obj["immutable"] = in["immutable"];
    if (!data.empty()) obj["data"] = data;
    std::string type = in.contains("type") && in["type"].is_string() ? in["type"].get<std::string>() : "";
    obj["type"] = type.empty() ? "Opaque" : type;
    p.obj = std::move(obj);
    p.ok = true;
    return p;
  }

  FieldErrors Validate(const ResourceType& t, const Json& obj) { return t.IsSecret() ? ValidateSecret(obj) : ValidateRbac(t.kind, obj); }

  // ValidateSecret (k/k pkg/apis/core/validation).
  FieldErrors ValidateSecret(const Json& obj) {
    FieldErrors errs;
    const Json& meta = obj["metadata"];
    std::string name = meta.value("name", "");
    if (name.empty()) {
      errs.push_back({FieldError::Type::kRequired, "metadata.name", "", "name or generateName is required"});
    } else {
      for (const std::string& e : IsDns1123Subdomain(name)) errs.push_back({FieldError::Type::kInvalid, "metadata.name", name, e});
    }
    ValidateLabelsAndAnnotations(meta, &errs);
    size_t total = 0;
    std::map<std::string, SecretBytes> decoded;
    if (obj.contains("data")) {
      for (const auto& [k, v] : obj["data"].items()) {
        for (const std::string& e : IsConfigMapKey(k)) errs.push_back({FieldError::Type::kInvalid, "data[" + k + "]", k, e});
        auto bytes = Base64DecodeSecret(v.get_ref<const std::string&>());
        total += bytes->size();
        decoded[k] = std::move(bytes).value();
      }
    }
    if (total > kMaxSecretSize) {
      errs.push_back({FieldError::Type::kTooLong, "data", "", "may not be more than " + std::to_string(kMaxSecretSize) + " bytes"});
    }
    std::string type = obj.value("type", "Opaque");
    auto require = [&](const std::string& key) {
      if (!decoded.count(key)) errs.push_back({FieldError::Type::kRequired, "data[" + key + "]", "", ""});
    };
    auto require_json = [&](const std::string& key) {
      auto it = decoded.find(key);
      if (it == decoded.end()) {
        errs.push_back({FieldError::Type::kRequired, "data[" + key + "]", "", ""});
      } else if (!Json::accept(it->second.view()) || !Json::parse(it->second.view()).is_object()) {
        errs.push_back({FieldError::Type::kInvalid, "data[" + key + "]", "<secret contents redacted>", "invalid JSON object"});
      }
    };
    if (type == "kubernetes.io/service-account-token") {
      const Json& ann = meta.value("annotations", Json::object());
      if (!ann.is_object() || ann.value("kubernetes.io/service-account.name", "").empty()) {
        errs.push_back({FieldError::Type::kRequired, "metadata.annotations[kubernetes.io/service-account.name]", "", ""});
      }
    } else if (type == "kubernetes.io/dockercfg") {
      require_json(".dockercfg");
    } else if (type == "kubernetes.io/dockerconfigjson") {
      require_json(".dockerconfigjson");
    } else if (type == "kubernetes.io/basic-auth") {
      if (!decoded.count("username") && !decoded.count("password")) {
        errs.push_back({FieldError::Type::kRequired, "data[username]", "", ""});
        errs.push_back({FieldError::Type::kRequired, "data[password]", "", ""});
      }
    } else if (type == "kubernetes.io/ssh-auth") {
      auto it = decoded.find("ssh-privatekey");
      if (it == decoded.end() || it->second.empty()) errs.push_back({FieldError::Type::kRequired, "data[ssh-privatekey]", "", ""});
    } else if (type == "kubernetes.io/tls") {
      require("tls.crt");
      require("tls.key");
    }
    return errs;
  }

  std::string Manager(const http::Request& req, const std::map<std::string, std::string>& q) {
    std::string m = Param(q, "fieldManager");
    if (!m.empty()) return m;
    auto it = req.find(boost::beast::http::field::user_agent);
    std::string ua = it == req.end() ? "unknown" : std::string(it->value());
    return ua.substr(0, ua.find('/'));
  }

  // Common checks of write options; returns an error message or "".
  static std::string CheckWriteOptions(const std::map<std::string, std::string>& q) {
    std::string dry = Param(q, "dryRun");
    if (!dry.empty() && dry != "All") return "Invalid dryRun value: \"" + dry + "\": supported values: \"All\"";
    std::string fv = Param(q, "fieldValidation");
    if (!fv.empty() && fv != "Strict" && fv != "Warn" && fv != "Ignore") {
      return "Invalid fieldValidation value: \"" + fv + "\": supported values: \"Ignore\", \"Warn\", \"Strict\"";
    }
    if (Param(q, "fieldManager").size() > 128) return "fieldManager: Too long: may not be more than 128 bytes";
    return "";
  }

  static Json Stored(Json obj) {
    obj["metadata"].erase("resourceVersion");
    obj["metadata"] = OrderedMeta(obj["metadata"]);
    return obj;
  }

  static SecretBytes Dump(const Json& obj) {
    std::string text = obj.dump();
    SecretBytes out(text);
    internal::SecureZero(text.data(), text.size());
    return out;
  }

  // How many earlier versions to keep for Secrets in `ns`: the namespace's
  // sigil.dev/history-versions annotation, else the server's setting.
  Result<int> HistoryVersions(const std::string& ns) {
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, store_->Get(NsKey(ns)));
    if (o) {
      Json n = Json::parse(o->doc.view());
      std::string v = n["metadata"].value("annotations", Json::object()).value(kHistoryAnnotation, "");
      if (auto keep = ParseHistoryVersions(v)) return *keep;
    }
    return history_versions_;
  }
  static std::optional<int> ParseHistoryVersions(const std::string& v) {
    int keep = -1;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), keep);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || keep < 0 || keep > store::History::kMaxKeep) {
      return std::nullopt;
    }
    return keep;
  }

  // Adds the version-history writes for a write of secret ns/name (doc nullptr: delete).
  Status RecordVersion(const std::string& ns, const std::string& name, const SecretBytes* doc, const std::string& operation,
                       const std::string& manager, store::SideEffects* also) {
    SIGIL_ASSIGN_OR_RETURN(int keep, HistoryVersions(ns));
    return history_.Record(SecretKey(ns, name), doc, {operation, Now(), manager}, keep, also).status();
  }

  // Stores a new object; a Secret with its first recorded version. Retries a lost race on the
  // history keys (a concurrent delete's tombstone), never a lost race on the object itself.
  Result<int64_t> CreateStored(const ResourceType& t, const std::string& ns, const std::string& name, const Json& obj,
                               const std::string& operation, const std::string& manager) {
    SecretBytes doc = Dump(obj);
    if (!t.IsSecret()) return store_->Create(t.Key(ns, name), doc);
    for (int attempt = 0;; ++attempt) {
      store::SideEffects also;
      SIGIL_RETURN_IF_ERROR(RecordVersion(ns, name, &doc, operation, manager, &also));
      auto rev = store_->Create(SecretKey(ns, name), doc, also);
      if (rev.ok() || rev.error().code() != StatusCode::kAborted || attempt + 1 >= kMaxUpdateRetries) return rev;
    }
  }

  http::Response CreateObject(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q,
                              const std::string& ns, const Identity* who) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    if (t.namespaced) {
      auto exists = NamespaceExists(ns);
      if (!exists.ok()) return FailStatus(req, exists.error());
      if (!*exists) return Fail(req, NotFound("namespaces", ns));
    }
    auto body = DecodeBody(req, t.kind);
    if (!body.ok) return Fail(req, body.error);
    Prepared p = Prepare(t, body.json, ns, Param(q, "fieldValidation").empty() ? "Warn" : Param(q, "fieldValidation"));
    if (!p.ok) return Fail(req, p.error);
    if (auto e = CheckDuplicates(body, q, &p.warnings)) return Fail(req, *e);
    Json& obj = p.obj;
    Json& meta = obj["metadata"];
    if (meta.value("name", "").empty() && !meta.value("generateName", "").empty()) {
      meta["name"] = meta["generateName"].get<std::string>() + GenerateNameSuffix();
    }
    meta.erase("resourceVersion");
    meta["uid"] = NewUid();
    meta["creationTimestamp"] = Now();
    meta.erase("managedFields");
    std::string name = meta.value("name", "");
    FieldErrors errs = Validate(t, obj);
    if (!errs.empty()) return Fail(req, InvalidFor(t, name, errs));
    if (auto e = CheckEscalation(t, who, ns, name, obj)) return Fail(req, *e);
    std::vector<ManagedEntry> entries;
    RecordUpdate(&entries, nullptr, obj, Manager(req, q), Now());
    obj["metadata"]["managedFields"] = RenderManagedFields(entries);
    obj = Stored(std::move(obj));
    if (Param(q, "dryRun") == "All") return Reply(req, 201, WithRv(obj, store_->CurrentRevision()), "application/json", p.warnings);
    auto rev = CreateStored(t, ns, name, obj, "create", Manager(req, q));
    if (!rev.ok()) {
      if (rev.error().code() == StatusCode::kAlreadyExists) return Fail(req, ForType(AlreadyExists(t.Qualified(), name), t));
      return FailStatus(req, rev.error());
    }
    SyncAuthorizer(t, *rev);
    return Reply(req, 201, WithRv(std::move(obj), *rev), "application/json", p.warnings);
  }

  http::Response GetObject(const ResourceType& t, const http::Request& req, const std::string& ns, const std::string& name) {
    auto o = store_->Get(t.Key(ns, name));
    if (!o.ok()) return FailStatus(req, o.error());
    if (!o->has_value()) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
    Json obj = WithRv(Json::parse((*o)->doc.view()), (*o)->revision);
    ShowAggregated(t, &obj);
    if (WantsTable(req)) return Reply(req, 200, TableFor(t, {obj}, std::to_string((*o)->revision), ""), kTableContentType);
    return Reply(req, 200, obj);
  }

  // An aggregated ClusterRole is read with the rules it grants (the union of the ClusterRoles
  // its selectors match), as kube-apiserver's aggregation controller would have written them;
  // the stored object keeps what its writer gave.
  void ShowAggregated(const ResourceType& t, Json* obj) const {
    if (&t != &kClusterRoles || authorizer_ == nullptr || !obj->contains("aggregationRule")) return;
    auto rules = authorizer_->RulesOfRole("ClusterRole", (*obj)["metadata"].value("name", ""), "");
    if (!rules) return;
    Json out = Json::array();
    for (const authz::PolicyRule& r : *rules) out.push_back(Json::parse(r.ToJson().dump()));
    (*obj)["rules"] = out;
  }

  static Json TableHeader(const std::string& rv, std::initializer_list<std::array<const char*, 3>> cols) {
    Json defs = Json::array();
    for (const auto& c : cols) {
      defs.push_back({{"name", c[0]}, {"type", c[1]}, {"format", c[2]}, {"description", ""}, {"priority", 0}});
    }
    return Json{{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", {{"resourceVersion", rv}}},
                {"columnDefinitions", defs}, {"rows", Json::array()}};
  }

  static Json PartialMetadata(const Json& obj) {
    Json m = obj["metadata"];
    m.erase("managedFields");
    return Json{{"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", m}};
  }

  Json SecretTable(const std::vector<Json>& items, const std::string& rv, const std::string& cont) {
    Json t = TableHeader(rv, {{"Name", "string", "name"}, {"Type", "string", ""}, {"Data", "string", ""}, {"Age", "string", ""}});
    if (!cont.empty()) t["metadata"]["continue"] = cont;
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
    for (const Json& o : items) {
      int64_t created = ParseRfc3339(o["metadata"].value("creationTimestamp", ""));
      size_t n = o.contains("data") ? o["data"].size() : 0;
      t["rows"].push_back({{"cells", {o["metadata"].value("name", ""), o.value("type", "Opaque"), n, HumanDuration(now - created)}},
                           {"object", PartialMetadata(o)}});
    }
    return t;
  }
  Json TableFor(const ResourceType& t, const std::vector<Json>& items, const std::string& rv, const std::string& cont) {
    if (t.IsSecret()) return SecretTable(items, rv, cont);
    // kube-apiserver's printers: roles "Name, Created At"; bindings "Name, Role, Age" and, in
    // -o wide, "Users, Groups, ServiceAccounts".
    Json t_ = t.IsRole() ? TableHeader(rv, {{"Name", "string", "name"}, {"Created At", "date", ""}})
                         : TableHeader(rv, {{"Name", "string", "name"}, {"Role", "string", ""}, {"Age", "string", ""},
                                            {"Users", "string", ""}, {"Groups", "string", ""}, {"ServiceAccounts", "string", ""}});
    if (!t.IsRole()) {
      for (size_t i = 3; i < 6; ++i) t_["columnDefinitions"][i]["priority"] = 1;
    }
    if (!cont.empty()) t_["metadata"]["continue"] = cont;
    int64_t now = std::chrono::duration_cast<std::chrono::seconds>(clock_->Now().time_since_epoch()).count();
    for (const Json& o : items) {
      std::string name = o["metadata"].value("name", "");
      std::string created = o["metadata"].value("creationTimestamp", "");
      Json cells;
      if (t.IsRole()) {
        cells = {name, created};
      } else {
        std::string users, groups, sas;
        auto add = [](std::string* list, const std::string& v) { *list += (list->empty() ? "" : ", ") + v; };
        for (const Json& sub : o.value("subjects", Json::array())) {
          std::string k = sub.value("kind", ""), n = sub.value("name", "");
          if (k == "User") add(&users, n);
          if (k == "Group") add(&groups, n);
          if (k == "ServiceAccount") add(&sas, sub.value("namespace", "") + "/" + n);
        }
        Json ref = o.value("roleRef", Json::object());
        cells = {name, ref.value("kind", "") + "/" + ref.value("name", ""), HumanDuration(now - ParseRfc3339(created)), users, groups, sas};
      }
      t_["rows"].push_back({{"cells", cells}, {"object", PartialMetadata(o)}});
    }
    return t_;
  }

  // What an update may not change: a Secret's type, a binding's roleRef.
  static FieldErrors UpdateRules(const ResourceType& t, const Json& old, const Json& next) {
    FieldErrors errs;
    if (t.IsSecret() && next.value("type", "Opaque") != old.value("type", "Opaque")) {
      errs.push_back({FieldError::Type::kInvalid, "type", next.value("type", ""), "field is immutable"});
    }
    if ((t.kind == "RoleBinding" || t.kind == "ClusterRoleBinding") && next.value("roleRef", Json()) != old.value("roleRef", Json())) {
      Json ref = next.value("roleRef", Json::object());
      std::string literal = "rbac.RoleRef{APIGroup:" + Json(ref.value("apiGroup", "")).dump() + ", Kind:" +
                            Json(ref.value("kind", "")).dump() + ", Name:" + Json(ref.value("name", "")).dump() + "}";
      errs.push_back({FieldError::Type::kInvalid, "roleRef", literal, "cannot change roleRef", true});
    }
    return errs;
  }

  // RBAC escalation prevention (k/k pkg/registry/rbac): a caller may create or change a role only
  // with rules it holds itself, unless it may "escalate" on that role; it may bind a role only
  // when it holds the role's rules where the binding applies, unless it may "bind" that role.
  // system:masters may do both, as in kube-apiserver.
  std::optional<ApiError> CheckEscalation(const ResourceType& t, const Identity* who, const std::string& ns,
                                          const std::string& name, const Json& obj) {
    if (t.IsSecret() || authorizer_ == nullptr) return std::nullopt;
    if (who == nullptr) return Forbidden(authz::Attributes{"create", true, t.group, t.plural, "", ns, name, ""}, who);
    if (std::find(who->groups.begin(), who->groups.end(), "system:masters") != who->groups.end()) return std::nullopt;
    std::string scope = t.namespaced ? ns : "";
    std::vector<authz::PolicyRule> wanted;
    if (t.IsRole()) {
      if (authorizer_->Allows(*who, authz::Attributes{"escalate", true, t.group, t.plural, "", scope, name, ""})) return std::nullopt;
      for (const Json& r : obj.value("rules", Json::array())) wanted.push_back(authz::PolicyRule::FromJson(r));
      if (obj.contains("aggregationRule") && obj["aggregationRule"].is_object()) {
        // An aggregated role gains whatever matching roles hold: only full authority may make one.
        wanted = {authz::PolicyRule{{"*"}, {"*"}, {"*"}, {}, {}}, authz::PolicyRule{{"*"}, {}, {}, {}, {"*"}}};
      }
    } else {
      Json ref = obj.value("roleRef", Json::object());
      std::string ref_kind = ref.value("kind", ""), ref_name = ref.value("name", "");
      std::string ref_plural = ref_kind == "Role" ? "roles" : "clusterroles";
      if (authorizer_->Allows(*who, authz::Attributes{"bind", true, t.group, ref_plural, "", scope, ref_name, ""})) return std::nullopt;
      auto rules = authorizer_->RulesOfRole(ref_kind, ref_name, scope);
      if (!rules) return ForType(NotFound(ref_plural + "." + std::string(kRbacGroup), ref_name), ref_kind == "Role" ? kRoles : kClusterRoles);
      wanted = std::move(*rules);
    }
    std::vector<authz::PolicyRule> missing = authz::Uncovered(authorizer_->RulesFor(*who, scope), wanted);
    if (missing.empty()) return std::nullopt;
    std::string groups;
    for (const std::string& g : who->groups) groups += (groups.empty() ? "" : " ") + Json(g).dump();
    std::string m = t.Qualified() + " " + Json(name).dump() + " is forbidden: user " + Json(who->user).dump() + " (groups=[" + groups +
                    "]) is attempting to grant RBAC permissions not currently held:";
    for (const authz::PolicyRule& r : missing) m += "\n" + r.Describe();
    Json details = {{"name", name}, {"kind", t.plural}, {"group", t.group}};
    return ApiError{403, "Forbidden", m, details};
  }

  // After an RBAC write, waits (briefly) until the authorizer has seen it, so that the next
  // request of the same client is decided on the new rules.
  void SyncAuthorizer(const ResourceType& t, int64_t revision) {
    if (!t.IsSecret() && authorizer_ != nullptr) authorizer_->WaitFor(t.Prefix(""), revision, std::chrono::seconds(2));
  }


  // resourceVersion / resourceVersionMatch of a list, as kube-apiserver reads them. sigil keeps
  // no old revisions in storage, so it serves the current state: "", "0" and NotOlderThan N
  // (N <= current; a larger N waits up to 3 s for the store to get there, then 504) are
  // honoured exactly; Exact N only when N is the current revision, else 410. Sets *exact.
  std::optional<ApiError> CheckListVersion(const std::map<std::string, std::string>& q, int64_t* exact) {
    std::string rv = Param(q, "resourceVersion"), match = Param(q, "resourceVersionMatch");
    bool cont = !Param(q, "continue").empty();
    *exact = 0;
    if (!match.empty()) {
      if (match != "NotOlderThan" && match != "Exact") {
        return BadRequest("resourceVersionMatch: Unsupported value: \"" + match + "\": supported values: \"Exact\", \"NotOlderThan\"");
      }
      if (rv.empty()) return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
      if (cont) return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden when continue is provided");
      if (match == "Exact" && rv == "0") {
        return BadRequest("resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
      }
    }
    if (rv.empty() || rv == "0") return std::nullopt;
    if (cont) return BadRequest("specifying resource version is not allowed when using continue");
    int64_t n = 0;
    auto [p, ec] = std::from_chars(rv.data(), rv.data() + rv.size(), n);
    if (ec != std::errc() || p != rv.data() + rv.size() || n < 0) return BadRequest("invalid resourceVersion: \"" + rv + "\"");
    auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    while (store_->CurrentRevision() < n && std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (int64_t cur = store_->CurrentRevision(); cur < n) {
      return ApiError{504, "Timeout", "Too large resource version: " + rv + ", current: " + std::to_string(cur),
                      Json{{"causes", Json::array({{{"reason", "ResourceVersionTooLarge"}, {"message", "Too large resource version"}}})},
                           {"retryAfterSeconds", 1}}};
    }
    if (match == "Exact") *exact = n;
    return std::nullopt;
  }

  static ApiError ListTooOld() { return ApiError{410, "Expired", "The resourceVersion for the provided list is too old.", nullptr}; }

  http::Response ListObjects(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns) {
    int64_t exact = 0;
    if (auto e = CheckListVersion(q, &exact)) return Fail(req, *e);
    auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
    if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
    auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), t.FieldSelectors());
    if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
    size_t limit = 0;
    if (std::string l = Param(q, "limit"); !l.empty()) {
      try {
        long long v = std::stoll(l);
        if (v < 0) throw std::invalid_argument("negative");
        limit = static_cast<size_t>(v);
      } catch (const std::exception&) {
        return Fail(req, BadRequest("invalid limit: \"" + l + "\""));
      }
    }
    if (!ns.empty()) {
      auto exists = NamespaceExists(ns);
      if (!exists.ok()) return FailStatus(req, exists.error());
      // kube-apiserver lists an absent namespace as empty; so does sigil.
    }
    std::string prefix = t.Prefix(ns);
    // continue token: base64 of {"v":"meta.k8s.io/v1","rv":R,"start":"<last key returned>"}.
    std::string start_after;
    int64_t list_rv = 0;
    if (std::string c = Param(q, "continue"); !c.empty()) {
      auto raw = Base64Decode(c);
      Json tok = raw.ok() && Json::accept(*raw) ? Json::parse(*raw) : Json();
      if (!tok.is_object() || !tok.contains("start") || !tok["start"].is_string() || !tok["start"].get<std::string>().starts_with(prefix)) {
        return Fail(req, BadRequest("continue key is not valid: the token is malformed or belongs to another list"));
      }
      start_after = tok["start"].get<std::string>();
      list_rv = tok.value("rv", int64_t{0});
    }
    std::vector<Json> items;
    std::string last_key;
    bool more = false;
    for (;;) {
      size_t chunk = limit == 0 ? 0 : std::max<size_t>(limit * 2, 64);
      auto page = store_->List(prefix, start_after, chunk);
      if (!page.ok()) return FailStatus(req, page.error());
      if (list_rv == 0) list_rv = page->revision;
      if (exact != 0 && page->revision != exact) return Fail(req, ListTooOld());
      bool stopped_early = false;
      for (size_t i = 0; i < page->items.size(); ++i) {
        store::Object& o = page->items[i];
        Json obj = WithRv(Json::parse(o.doc.view()), o.revision);
        ShowAggregated(t, &obj);
        start_after = o.key;
        if (!labels->Matches(StringMap(obj["metadata"].value("labels", Json::object())))) continue;
        if (!fields->Matches([&](const std::string& f) {
              if (f == "metadata.name") return obj["metadata"].value("name", "");
              if (f == "metadata.namespace") return obj["metadata"].value("namespace", "");
              return obj.value("type", "");
            })) {
          continue;
        }
        items.push_back(std::move(obj));
        last_key = o.key;
        if (limit > 0 && items.size() == limit) {
          more = i + 1 < page->items.size() || page->more;
          stopped_early = true;
          break;
        }
      }
      if (stopped_early || !page->more) break;
    }
    std::string cont;
    if (more) cont = Base64Encode(Json{{"v", "meta.k8s.io/v1"}, {"rv", list_rv}, {"start", last_key}}.dump());
    std::string rv = std::to_string(list_rv);
    if (WantsTable(req)) return Reply(req, 200, TableFor(t, items, rv, cont), kTableContentType);
    Json list = {{"kind", t.kind + "List"}, {"apiVersion", t.ApiVersion()}, {"metadata", {{"resourceVersion", rv}}}, {"items", Json::array()}};
    if (!cont.empty()) list["metadata"]["continue"] = cont;
    for (Json& i : items) {
      i.erase("kind");
      i.erase("apiVersion");
      list["items"].push_back(std::move(i));
    }
    return Reply(req, 200, list);
  }

  // The shared end of PUT and PATCH: `next` (a client's full Secret) replaces `current`.
  // Returns the response, or nullopt when the store changed underneath (caller retries).
  // `applied` carries the managedFields of a server-side apply; otherwise the write is recorded
  // as an Update by the request's field manager.
  std::optional<http::Response> Replace(const ResourceType& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q,
                                        const std::string& ns, const std::string& name, const Json& next,
                                        const store::Object& current,
                                        const std::vector<ManagedEntry>* applied = nullptr,
                                        const char* operation = "update") {
    Prepared p = Prepare(t, next, ns, Param(q, "fieldValidation").empty() ? "Warn" : Param(q, "fieldValidation"));
    if (!p.ok) return Fail(req, p.error);
    Json old = Json::parse(current.doc.view());
    Json& obj = p.obj;
    std::string body_name = obj["metadata"].value("name", "");
    if (!body_name.empty() && body_name != name) {
      return Fail(req, BadRequest("the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")"));
    }
    std::string rv = obj["metadata"].value("resourceVersion", "");
    if (!rv.empty() && rv != std::to_string(current.revision)) return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
    obj["metadata"]["name"] = name;
    obj["metadata"]["uid"] = old["metadata"].value("uid", "");
    obj["metadata"]["creationTimestamp"] = old["metadata"].value("creationTimestamp", "");
    // As kube-apiserver: managedFields sent with the write replace the recorded ones (so a
    // client can migrate ownership); [{}] clears them; absent or empty keeps the recorded ones.
    Json base_fields = old["metadata"].value("managedFields", Json::array());
    if (Json sent = obj["metadata"].value("managedFields", Json::array()); sent.is_array() && !sent.empty()) {
      base_fields = sent.size() == 1 && sent[0].is_object() && sent[0].empty() ? Json::array() : sent;
    }
    FieldErrors errs = UpdateRules(t, old, obj);
    if (t.IsSecret() && old.value("immutable", false)) {
      if (!obj.value("immutable", false)) {
        errs.push_back({FieldError::Type::kForbidden, "immutable", "", "field is immutable when `immutable` is set"});
      }
      if (obj.value("data", Json::object()) != old.value("data", Json::object())) {
        errs.push_back({FieldError::Type::kForbidden, "data", "", "field is immutable when `immutable` is set"});
      }
    }
    for (FieldError& e : Validate(t, obj)) errs.push_back(std::move(e));
    if (!errs.empty()) return Fail(req, InvalidFor(t, name, errs));
    if (auto e = CheckEscalation(t, who, ns, name, obj)) return Fail(req, *e);
    if (applied != nullptr) {
      obj["metadata"]["managedFields"] = RenderManagedFields(*applied);
    } else {
      std::vector<ManagedEntry> entries = ParseManagedFields(base_fields);
      RecordUpdate(&entries, &old, obj, Manager(req, q), Now());
      obj["metadata"]["managedFields"] = RenderManagedFields(entries);
    }
    obj = Stored(std::move(obj));
    if (Param(q, "dryRun") == "All") return Reply(req, 200, WithRv(obj, current.revision), "application/json", p.warnings);
    SecretBytes doc = Dump(obj);
    store::SideEffects also;
    if (t.IsSecret()) {
      if (Status st = RecordVersion(ns, name, &doc, operation, Manager(req, q), &also); !st.ok()) return FailStatus(req, st);
    }
    auto rev = store_->Update(t.Key(ns, name), doc, current.revision, also);
    if (!rev.ok()) {
      if (rev.error().code() == StatusCode::kNotFound) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
      if (rev.error().code() == StatusCode::kAborted) {
        if (!rv.empty()) return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
        return std::nullopt;  // unconditional: retry on the new version
      }
      return FailStatus(req, rev.error());
    }
    SyncAuthorizer(t, *rev);
    return Reply(req, 200, WithRv(std::move(obj), *rev), "application/json", p.warnings);
  }

  http::Response UpdateObject(const ResourceType& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                              const std::string& name) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    auto body = DecodeBody(req, t.kind);
    if (!body.ok) return Fail(req, body.error);
    std::vector<std::string> warnings;
    if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(t.Key(ns, name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
      if (auto res = Replace(t, who, req, q, ns, name, body.json, **o)) {
        AddWarnings(&*res, warnings);
        return std::move(*res);
      }
    }
    return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
  }

  http::Response PatchObject(const ResourceType& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                             const std::string& name) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    auto it = req.find(boost::beast::http::field::content_type);
    std::string ct = it == req.end() ? "" : std::string(it->value());
    std::string base = ct.substr(0, ct.find(';'));
    if (base == "application/apply-patch+yaml") return ApplyObject(t, who, req, q, ns, name);
    if (base != "application/merge-patch+json" && base != "application/strategic-merge-patch+json" &&
        base != "application/json-patch+json") {
      return Fail(req, UnsupportedMediaType(ct));
    }
    if (!Param(q, "force").empty()) {
      return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch",
                                Json{{"kind", "PatchOptions"}, {"group", "meta.k8s.io"},
                                     {"causes", Json::array({{{"reason", "FieldValueForbidden"}, {"message", "Forbidden: may not be specified for non-apply patch"}, {"field", "force"}}})}}});
    }
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    std::vector<std::string> warnings;
    if (auto e = CheckDuplicates(body, q, &warnings)) return Fail(req, *e);
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(t.Key(ns, name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
      Json current = WithRv(Json::parse((*o)->doc.view()), (*o)->revision);
      Json next;
      if (auto e = ApplyPatch(base, body.json, current, &next)) return Fail(req, *e);
      if (auto res = Replace(t, who, req, q, ns, name, next, **o)) {
        AddWarnings(&*res, warnings);
        return std::move(*res);
      }
    }
    return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
  }

  // A JSON patch (RFC 6902) or a merge patch applied to `current`. A strategic merge patch is a
  // JSON merge patch for every kind sigil serves: their only lists with merge strategies are in
  // metadata (finalizers, ownerReferences), which sigil replaces, and RBAC's rules and subjects
  // are atomic.
  static std::optional<ApiError> ApplyPatch(const std::string& content_type, const Json& patch, const Json& current, Json* next) {
    if (content_type == "application/json-patch+json") {
      if (!patch.is_array()) return BadRequest("a JSON patch must be an array of operations");
      try {
        *next = current.patch(patch);
      } catch (const nlohmann::json::exception& e) {
        // RFC 6902 failures (a failing test op, a missing path): the patch cannot apply.
        return ApiError{422, "Invalid", "the JSON patch could not be applied (error " + std::to_string(e.id) + ")", nullptr};
      }
      return std::nullopt;
    }
    if (!patch.is_object()) return BadRequest("a merge patch must be a JSON object");
    *next = current;
    next->merge_patch(patch);
    return std::nullopt;
  }

  // Server-side apply (PATCH application/apply-patch+yaml): creates the Secret when absent,
  // otherwise merges the configuration into it with field ownership (managed_fields.h).
  http::Response ApplyObject(const ResourceType& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                             const std::string& name) {
    std::string manager = Param(q, "fieldManager");
    if (manager.empty()) {
      return Fail(req, ApiError{422, "Invalid", "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
                                Json{{"kind", "PatchOptions"}, {"group", "meta.k8s.io"},
                                     {"causes", Json::array({{{"reason", "FieldValueRequired"}, {"message", "Required value: is required for apply patch"}, {"field", "fieldManager"}}})}}});
    }
    bool force = ParseBool(Param(q, "force"));
    auto body = DecodeBody(req, t.kind);
    if (!body.ok) return Fail(req, body.error);
    const Json& in = body.json;
    if (!in.is_object()) return Fail(req, BadRequest("the apply configuration must be a YAML or JSON object"));
    if (!in.contains("apiVersion") || !in.contains("kind")) {
      return Fail(req, BadRequest("the apply configuration must set apiVersion (" + t.ApiVersion() + ") and kind (" + t.kind + ")"));
    }
    Prepared p = Prepare(t, in, ns, Param(q, "fieldValidation").empty() ? "Warn" : Param(q, "fieldValidation"));
    if (!p.ok) return Fail(req, p.error);
    Json& config = p.obj;
    std::string body_name = config["metadata"].value("name", "");
    if (!body_name.empty() && body_name != name) {
      return Fail(req, BadRequest("the name of the object (" + body_name + ") does not match the name on the URL (" + name + ")"));
    }
    config["metadata"]["name"] = name;
    FieldSet fields = ObjectFields(config, false);
    if (t.IsSecret() && (!in.contains("type") || !in["type"].is_string() || in["type"].get<std::string>().empty())) {
      fields.erase({"type"});  // defaulted, not configured: the applier does not own it
    }
    std::string rv = config["metadata"].value("resourceVersion", "");
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(t.Key(ns, name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) {
        if (!rv.empty()) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
        if (t.namespaced) {
          auto exists = NamespaceExists(ns);
          if (!exists.ok()) return FailStatus(req, exists.error());
          if (!*exists) return Fail(req, NotFound("namespaces", ns));
        }
        Json obj = config;
        obj["metadata"].erase("resourceVersion");
        obj["metadata"]["uid"] = NewUid();
        obj["metadata"]["creationTimestamp"] = Now();
        ApplyResult r = Apply(nullptr, {}, obj, fields, manager, force, Now());
        r.obj["metadata"]["managedFields"] = RenderManagedFields(r.entries);
        FieldErrors errs = Validate(t, r.obj);
        if (!errs.empty()) return Fail(req, InvalidFor(t, name, errs));
        if (auto e = CheckEscalation(t, who, ns, name, r.obj)) return Fail(req, *e);
        obj = Stored(std::move(r.obj));
        if (Param(q, "dryRun") == "All") return Reply(req, 201, WithRv(obj, store_->CurrentRevision()), "application/json", p.warnings);
        auto rev = CreateStored(t, ns, name, obj, "create", manager);
        if (rev.ok()) {
          SyncAuthorizer(t, *rev);
          return Reply(req, 201, WithRv(std::move(obj), *rev), "application/json", p.warnings);
        }
        if (rev.error().code() == StatusCode::kAlreadyExists) continue;  // raced with a create: apply to it
        return FailStatus(req, rev.error());
      }
      if (!rv.empty() && rv != std::to_string((*o)->revision)) return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
      Json live = Json::parse((*o)->doc.view());
      ApplyResult r = Apply(&live, ParseManagedFields(live["metadata"].value("managedFields", Json::array())), config, fields,
                            manager, force, Now());
      if (!r.conflicts.empty()) return Fail(req, ApplyConflictError(r.conflicts));
      r.obj["metadata"].erase("managedFields");
      if (auto res = Replace(t, who, req, q, ns, name, r.obj, **o, &r.entries)) {
        AddWarnings(&*res, p.warnings);
        return std::move(*res);
      }
    }
    return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
  }

  http::Response DeleteObject(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                              const std::string& name) {
    Json opts = Json::object();
    if (!req.body().empty()) {
      auto body = DecodeBody(req);
      if (!body.ok) return Fail(req, body.error);
      if (!body.json.is_object()) return Fail(req, BadRequest("DeleteOptions must be a JSON object"));
      opts = body.json;
    }
    bool dry = Param(q, "dryRun") == "All" ||
               (opts.contains("dryRun") && opts["dryRun"].is_array() && !opts["dryRun"].empty() && opts["dryRun"][0] == "All");
    Json pre = opts.value("preconditions", Json::object());
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(t.Key(ns, name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
      Json obj = WithRv(Json::parse((*o)->doc.view()), (*o)->revision);
      std::string uid = obj["metadata"].value("uid", "");
      if (pre.is_object() && pre.contains("uid") && pre["uid"].is_string() && pre["uid"] != uid) {
        return Fail(req, Conflict(t.Qualified(), name, "Precondition failed: UID in precondition: " + pre["uid"].get<std::string>() +
                                                       ", UID in object meta: " + uid));
      }
      if (pre.is_object() && pre.contains("resourceVersion") && pre["resourceVersion"].is_string() &&
          pre["resourceVersion"] != std::to_string((*o)->revision)) {
        return Fail(req, Conflict(t.Qualified(), name, "Precondition failed: ResourceVersion in precondition: " +
                                                       pre["resourceVersion"].get<std::string>() + ", ResourceVersion in object meta: " +
                                                       std::to_string((*o)->revision)));
      }
      Json ok = {{"kind", "Status"}, {"apiVersion", "v1"}, {"metadata", Json::object()}, {"status", "Success"},
                 {"details", {{"name", name}, {"kind", t.plural}, {"uid", uid}}}};
      if (!t.group.empty()) ok["details"]["group"] = t.group;
      if (dry) return Reply(req, 200, ok);
      store::SideEffects also;
      if (t.IsSecret()) {
        if (Status st = RecordVersion(ns, name, nullptr, "delete", Manager(req, q), &also); !st.ok()) return FailStatus(req, st);
      }
      auto r = store_->Delete(t.Key(ns, name), (*o)->revision, also);
      if (r.ok()) {
        SyncAuthorizer(t, *r);
        return Reply(req, 200, ok);
      }
      if (r.error().code() == StatusCode::kNotFound) return Fail(req, ForType(NotFound(t.Qualified(), name), t));
      if (r.error().code() != StatusCode::kAborted) return FailStatus(req, r.error());
    }
    return Fail(req, ForType(ModifiedConflict(t.Qualified(), name), t));
  }

  // ---- version history (sigil's own API) -------------------------------------------------------
  //   GET  /sigil/v1/namespaces/<ns>/secrets/<name>/versions       the versions, without values
  //   GET  /sigil/v1/namespaces/<ns>/secrets/<name>/versions/<n>   one version, with its Secret
  //   POST /sigil/v1/namespaces/<ns>/secrets/<name>/rollback       {"version": n}

  // POST /sigil/v1/tokens {"user", "uid"?, "groups"?, "ttlSeconds"?} -> 201 {"token", ...}:
  // a sigil bearer token for that identity, shown once. Authorized as the non-resource path
  // (post; cluster-admin has it) and, because a token for someone is acting as them, only
  // when the caller may impersonate that user and each group. Never audited with its body.
  http::Response CreateToken(const http::Request& req, const Identity* who) {
    if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
    if (!token_issuer_) return Fail(req, FromStatusMessage(404, "NotFound", "this server does not issue tokens"));
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    const Json& in = body.json;
    FieldErrors errs;
    if (!in.is_object()) return Fail(req, BadRequest("the body must be a JSON object"));
    for (const auto& [k, v] : in.items()) {
      if (k != "user" && k != "uid" && k != "groups" && k != "ttlSeconds") errs.push_back({FieldError::Type::kForbidden, k, "", "unknown field"});
    }
    std::string user = in.contains("user") && in["user"].is_string() ? in["user"].get<std::string>() : "";
    if (user.empty()) errs.push_back({FieldError::Type::kRequired, "user", "", ""});
    if (user == "system:anonymous") errs.push_back({FieldError::Type::kInvalid, "user", user, "a token cannot be anonymous"});
    std::vector<std::string> groups;
    if (in.contains("groups")) {
      if (!in["groups"].is_array()) {
        errs.push_back({FieldError::Type::kInvalid, "groups", "", "must be a list of strings"});
      } else {
        for (const Json& g : in["groups"]) {
          if (!g.is_string() || g.get<std::string>().empty()) {
            errs.push_back({FieldError::Type::kInvalid, "groups", "", "must be a list of non-empty strings"});
            break;
          }
          groups.push_back(g.get<std::string>());
        }
      }
    }
    std::optional<std::string> uid;
    if (in.contains("uid")) {
      if (in["uid"].is_string()) {
        uid = in["uid"].get<std::string>();
      } else {
        errs.push_back({FieldError::Type::kInvalid, "uid", "", "must be a string"});
      }
    }
    int64_t ttl = 86400;
    if (in.contains("ttlSeconds")) {
      if (!in["ttlSeconds"].is_number_integer() || in["ttlSeconds"].get<int64_t>() < 1 || in["ttlSeconds"].get<int64_t>() > 31536000) {
        errs.push_back({FieldError::Type::kInvalid, "ttlSeconds", in["ttlSeconds"].dump(), "must be an integer from 1 to 31536000 (a year)"});
      } else {
        ttl = in["ttlSeconds"].get<int64_t>();
      }
    }
    if (!errs.empty()) return Fail(req, Invalid("Token", user, errs));
    if (authorizer_ != nullptr) {
      if (who == nullptr) return Fail(req, Forbidden(authz::Attributes{"post", false, "", "", "", "", "", "/sigil/v1/tokens"}, who));
      if (auto e = MayActAs(*who, user, groups, uid, {})) return Fail(req, *e);
    }
    Identity id{user, uid.value_or(""), groups, {}, "token"};
    auto token = token_issuer_(id, std::chrono::seconds(ttl));
    if (!token.ok()) return FailStatus(req, token.error());
    Json out = {{"kind", "Token"}, {"apiVersion", "sigil.dev/v1"}, {"user", user}, {"groups", groups},
                {"expirationTimestamp", FormatRfc3339(clock_->Now() + std::chrono::seconds(ttl))},
                {"token", std::string(token->view())}};
    if (uid) out["uid"] = *uid;
    http::Response res = Reply(req, 201, out);
    std::string& t = out["token"].get_ref<std::string&>();
    internal::SecureZero(t.data(), t.size());
    return res;
  }

  // POST /sigil/v1/audit/hash {"value": "..."} -> {"hash": "hmac-sha256:<hex>"}: what the audit
  // trail shows for that value (Vault's sys/audit-hash). The request is authorized as the
  // non-resource path (post); its body is never audited.
  http::Response AuditHash(const http::Request& req) {
    if (req.method() != http::Verb::post) return Fail(req, MethodNotAllowed());
    if (auditor_ == nullptr) return Fail(req, FromStatusMessage(404, "NotFound", "audit is not enabled on this server"));
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    if (!body.json.is_object() || !body.json.contains("value") || !body.json["value"].is_string()) {
      return Fail(req, BadRequest("the body must be {\"value\": \"<text>\"}"));
    }
    std::string& v = body.json["value"].get_ref<std::string&>();
    Json out = {{"hash", auditor_->Hash(v)}};
    internal::SecureZero(v.data(), v.size());
    return Reply(req, 200, out);
  }

  http::Response SigilRoute(const http::Request& req, const std::map<std::string, std::string>& q,
                            const std::vector<std::string>& s, const Identity* who) {
    if (s.size() == 4 && s[1] == "v1" && s[2] == "audit" && s[3] == "hash") return AuditHash(req);
    if (s.size() == 3 && s[1] == "v1" && s[2] == "tokens") return CreateToken(req, who);
    if (s.size() < 7 || s.size() > 8 || s[1] != "v1" || s[2] != "namespaces" || s[4] != "secrets") {
      return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
    }
    const std::string &ns = s[3], &name = s[5], &what = s[6];
    if (name == "." || name == "..") return Fail(req, BadRequest("name may not be \"" + name + "\""));
    if (what == "versions" && s.size() == 7) return IsGet(req) ? ListVersions(req, ns, name) : Fail(req, MethodNotAllowed());
    if (what == "versions" && s.size() == 8) return IsGet(req) ? GetVersion(req, ns, name, s[7]) : Fail(req, MethodNotAllowed());
    if (what == "rollback" && s.size() == 7) {
      return req.method() == http::Verb::post ? Rollback(req, q, ns, name) : Fail(req, MethodNotAllowed());
    }
    return Fail(req, FromStatusMessage(404, "NotFound", "the server could not find the requested resource"));
  }

  static Json VersionSummary(const store::Version& v, const Json* obj) {
    Json j = {{"version", v.version}, {"operation", v.meta.operation}, {"time", v.meta.time}, {"manager", v.meta.manager},
              {"resourceVersion", std::to_string(v.revision)}, {"deleted", v.deleted}};
    if (obj != nullptr) {
      j["uid"] = (*obj)["metadata"].value("uid", "");
      j["type"] = obj->value("type", "Opaque");
      Json keys = Json::array();
      Json data = obj->value("data", Json::object());
      for (const auto& [k, val] : data.items()) keys.push_back(k);
      j["keys"] = keys;
    }
    return j;
  }

  http::Response ListVersions(const http::Request& req, const std::string& ns, const std::string& name) {
    auto versions = history_.List(SecretKey(ns, name), true);
    if (!versions.ok()) return FailStatus(req, versions.error());
    auto current = store_->Get(SecretKey(ns, name));
    if (!current.ok()) return FailStatus(req, current.error());
    if (versions->empty() && !current->has_value()) return Fail(req, NotFound("secrets", name));
    auto keep = HistoryVersions(ns);
    if (!keep.ok()) return FailStatus(req, keep.error());
    Json list = {{"kind", "SecretVersionList"}, {"apiVersion", "sigil.dev/v1"},
                 {"metadata", {{"namespace", ns}, {"name", name}}}, {"keep", *keep}, {"current", nullptr},
                 {"versions", Json::array()}};
    for (const store::Version& v : *versions) {
      Json obj = v.deleted ? Json() : Json::parse(v.doc.view());
      list["versions"].push_back(VersionSummary(v, v.deleted ? nullptr : &obj));
      // The newest version is the current one when it is the Secret as it stands now.
      if (*current && v.revision == (*current)->revision) list["current"] = v.version;
    }
    return Reply(req, 200, list);
  }

  http::Response GetVersion(const http::Request& req, const std::string& ns, const std::string& name, const std::string& n) {
    int64_t version = 0;
    auto [p, ec] = std::from_chars(n.data(), n.data() + n.size(), version);
    if (ec != std::errc() || p != n.data() + n.size() || version <= 0) {
      return Fail(req, BadRequest("invalid version: \"" + n + "\": a positive integer is expected"));
    }
    auto v = history_.Get(SecretKey(ns, name), version);
    if (!v.ok()) return FailStatus(req, v.error());
    if (!v->has_value()) return Fail(req, FromStatusMessage(404, "NotFound", "version " + n + " of secrets \"" + name + "\" not found"));
    Json obj = (*v)->deleted ? Json() : WithRv(Json::parse((*v)->doc.view()), (*v)->revision);
    Json out = {{"kind", "SecretVersion"}, {"apiVersion", "sigil.dev/v1"}};
    Json summary = VersionSummary(**v, (*v)->deleted ? nullptr : &obj);
    for (const auto& [k, val] : summary.items()) out[k] = val;
    if (!(*v)->deleted) out["object"] = std::move(obj);
    return Reply(req, 200, out);
  }

  // Writes a new version whose data, labels, annotations and immutability are those of version
  // `n`; type and uid stay (type cannot change). A deleted Secret is re-created.
  http::Response Rollback(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                          const std::string& name) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    auto body = DecodeBody(req);
    if (!body.ok) return Fail(req, body.error);
    if (!body.json.is_object() || !body.json.contains("version") || !body.json["version"].is_number_integer() ||
        body.json["version"].get<int64_t>() <= 0) {
      return Fail(req, BadRequest("a rollback body is {\"version\": N} with N a positive integer"));
    }
    int64_t version = body.json["version"].get<int64_t>();
    std::string label = std::to_string(version);
    auto v = history_.Get(SecretKey(ns, name), version);
    if (!v.ok()) return FailStatus(req, v.error());
    if (!v->has_value()) return Fail(req, FromStatusMessage(404, "NotFound", "version " + label + " of secrets \"" + name + "\" not found"));
    if ((*v)->deleted) {
      return Fail(req, BadRequest("version " + label + " of secrets \"" + name + "\" records a deletion; roll back to a version before it"));
    }
    Json old = Json::parse((*v)->doc.view());
    std::map<std::string, std::string> wq = q;
    if (Param(wq, "fieldManager").empty()) wq["fieldManager"] = "sigil-rollback";
    for (int attempt = 0; attempt < kMaxUpdateRetries; ++attempt) {
      auto o = store_->Get(SecretKey(ns, name));
      if (!o.ok()) return FailStatus(req, o.error());
      if (!o->has_value()) {
        auto exists = NamespaceExists(ns);
        if (!exists.ok()) return FailStatus(req, exists.error());
        if (!*exists) return Fail(req, NotFound("namespaces", ns));
        Json obj = {{"kind", "Secret"}, {"apiVersion", "v1"},
                    {"metadata", {{"name", name}, {"namespace", ns}, {"uid", NewUid()}, {"creationTimestamp", Now()}}}};
        for (const char* f : {"labels", "annotations"}) {
          if (old["metadata"].contains(f)) obj["metadata"][f] = old["metadata"][f];
        }
        for (const char* f : {"immutable", "data", "type"}) {
          if (old.contains(f)) obj[f] = old[f];
        }
        std::vector<ManagedEntry> entries;
        RecordUpdate(&entries, nullptr, obj, Param(wq, "fieldManager"), Now());
        obj["metadata"]["managedFields"] = RenderManagedFields(entries);
        obj = Stored(std::move(obj));
        if (Param(q, "dryRun") == "All") return Reply(req, 201, WithRv(obj, store_->CurrentRevision()));
        auto rev = CreateStored(kSecrets, ns, name, obj, "rollback", Param(wq, "fieldManager"));
        if (rev.ok()) return Reply(req, 201, WithRv(std::move(obj), *rev));
        if (rev.error().code() == StatusCode::kAlreadyExists) continue;
        return FailStatus(req, rev.error());
      }
      Json next = Json::parse((*o)->doc.view());
      for (const char* f : {"labels", "annotations"}) {
        if (old["metadata"].contains(f)) {
          next["metadata"][f] = old["metadata"][f];
        } else {
          next["metadata"].erase(f);
        }
      }
      for (const char* f : {"immutable", "data", "type"}) {
        if (old.contains(f)) {
          next[f] = old[f];
        } else {
          next.erase(f);
        }
      }
      if (auto res = Replace(kSecrets, nullptr, req, wq, ns, name, next, **o, nullptr, "rollback")) return std::move(*res);
    }
    return Fail(req, ModifiedConflict("secrets", name));
  }

  // DELETE on the collection: deletes every Secret the selectors match, one by one (as
  // kube-apiserver does: not atomic), each with its tombstone version. Answers the list of the
  // deleted objects.
  http::Response DeleteCollection(const ResourceType& t, const http::Request& req, const std::map<std::string, std::string>& q,
                                        const std::string& ns) {
    if (std::string e = CheckWriteOptions(q); !e.empty()) return Fail(req, BadRequest(e));
    auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
    if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
    auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), t.FieldSelectors());
    if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
    bool dry = Param(q, "dryRun") == "All";
    if (!req.body().empty()) {
      auto body = DecodeBody(req);
      if (!body.ok) return Fail(req, body.error);
      if (!body.json.is_object()) return Fail(req, BadRequest("DeleteOptions must be a JSON object"));
      if (body.json.contains("dryRun") && body.json["dryRun"].is_array() && !body.json["dryRun"].empty() &&
          body.json["dryRun"][0] == "All") {
        dry = true;
      }
    }
    auto l = store_->List(t.Prefix(ns), "", 0);
    if (!l.ok()) return FailStatus(req, l.error());
    Json list = {{"kind", t.kind + "List"}, {"apiVersion", t.ApiVersion()}, {"metadata", {{"resourceVersion", std::to_string(l->revision)}}},
                 {"items", Json::array()}};
    std::string manager = Manager(req, q);
    for (store::Object& o : l->items) {
      Json obj = WithRv(Json::parse(o.doc.view()), o.revision);
      if (!labels->Matches(StringMap(obj["metadata"].value("labels", Json::object())))) continue;
      if (!fields->Matches([&](const std::string& f) {
            if (f == "metadata.name") return obj["metadata"].value("name", "");
            if (f == "metadata.namespace") return obj["metadata"].value("namespace", "");
            return obj.value("type", "");
          })) {
        continue;
      }
      std::string name = obj["metadata"].value("name", "");
      if (!dry) {
        int64_t rev = o.revision;
        bool gone = false;
        for (int attempt = 0;; ++attempt) {
          store::SideEffects also;
          if (t.IsSecret()) {
            if (Status st = RecordVersion(ns, name, nullptr, "delete", manager, &also); !st.ok()) return FailStatus(req, st);
          }
          auto r = store_->Delete(o.key, rev, also);
          if (r.ok()) {
            SyncAuthorizer(t, *r);
            break;
          }
          if (r.error().code() == StatusCode::kNotFound) {
            gone = true;  // deleted meanwhile by someone else
            break;
          }
          if (r.error().code() != StatusCode::kAborted || attempt + 1 >= kMaxUpdateRetries) return FailStatus(req, r.error());
          auto now = store_->Get(o.key);  // changed meanwhile: delete what is there now
          if (!now.ok()) return FailStatus(req, now.error());
          if (!now->has_value()) {
            gone = true;
            break;
          }
          rev = (*now)->revision;
        }
        if (gone) continue;
      }
      obj.erase("kind");
      obj.erase("apiVersion");
      list["items"].push_back(std::move(obj));
    }
    return Reply(req, 200, list);
  }

  // ---- watch ----------------------------------------------------------------------------------

  struct WatchState {
    std::mutex mu;  // orders event lines and bookmarks, so a bookmark never precedes an event it covers
    std::unique_ptr<storage::WatchHandle> handle;
    bool closed = false;
    // Bookmarks (allowWatchBookmarks=true): the revision every event up to which was sent.
    std::weak_ptr<http::StreamWriter> writer;
    std::string kind;
    int64_t progress = 0;
    std::chrono::steady_clock::time_point next_bookmark, deadline;
  };

  static std::string BookmarkLine(const std::string& kind, int64_t rv, bool initial_events_end) {
    Json meta = {{"resourceVersion", std::to_string(rv)}, {"creationTimestamp", nullptr}};
    if (initial_events_end) meta["annotations"] = {{"k8s.io/initial-events-end", "true"}};
    return Json{{"type", "BOOKMARK"}, {"object", {{"kind", kind}, {"apiVersion", "v1"}, {"metadata", meta}}}}.dump() + "\n";
  }

  // As kube-apiserver's watch cache: a bookmark every minute, and one about two seconds before
  // the watch's deadline, so a client can resume from there.
  static std::chrono::steady_clock::time_point NextBookmark(std::chrono::steady_clock::time_point now,
                                                           std::chrono::steady_clock::time_point deadline) {
    auto next = now + std::chrono::seconds(60);
    auto before_end = deadline - std::chrono::seconds(2);
    return before_end > now && before_end < next ? before_end : next;
  }

  void BookmarkLoop() {
    std::unique_lock<std::mutex> l(bookmark_mu_);
    while (!bookmark_stop_) {
      bookmark_cv_.wait_for(l, std::chrono::milliseconds(250));
      auto now = std::chrono::steady_clock::now();
      std::erase_if(bookmark_watches_, [&](const std::weak_ptr<WatchState>& w) {
        std::shared_ptr<WatchState> st = w.lock();
        if (!st) return true;
        std::lock_guard<std::mutex> sl(st->mu);
        if (st->closed) return true;
        if (now < st->next_bookmark) return false;
        std::shared_ptr<http::StreamWriter> writer = st->writer.lock();
        if (!writer || !writer->Write(BookmarkLine(st->kind, st->progress, false))) return true;
        st->next_bookmark = NextBookmark(now, st->deadline);
        return false;
      });
    }
  }

  std::optional<http::Response> Watch(const http::Request& req, const http::StreamStarter& start_stream) {
    Path p = SplitPath(req.target());
    auto q = ParseQuery(req.target());
    auto& s = p.seg;
    if (p.bad) return Fail(req, BadRequest("invalid path"));
    // The group-version part: /api/v1 (core) or /apis/rbac.authorization.k8s.io/v1.
    size_t gv = 0;
    if (s.size() >= 2 && s[0] == "api" && s[1] == "v1") gv = 2;
    if (s.size() >= 3 && s[0] == "apis" && s[1] == kRbacGroup && s[2] == "v1") gv = 3;
    if (gv == 0) return Fail(req, MethodNotAllowed());
    std::vector<std::string> rest(s.begin() + static_cast<long>(gv), s.end());
    bool legacy = !rest.empty() && rest[0] == "watch";  // /api/v1/watch/namespaces/<ns>/secrets[/<name>], ...
    if (legacy) rest.erase(rest.begin());
    std::string ns, only_name;
    if (rest.size() >= 3 && rest[0] == "namespaces") {
      ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (legacy && rest.size() == 2) {
      only_name = rest[1];
      rest.pop_back();
    }
    if (rest.size() != 1) return Fail(req, MethodNotAllowed());
    const ResourceType* type = nullptr;  // null: namespaces
    if (gv == 2 && rest[0] == "secrets") type = &kSecrets;
    if (gv == 3) type = RbacType(rest[0]);
    bool namespaces = gv == 2 && rest[0] == "namespaces" && ns.empty();
    if (type == nullptr && !namespaces) return Fail(req, MethodNotAllowed());
    if (type != nullptr && !type->namespaced && !ns.empty()) return Fail(req, MethodNotAllowed());
    std::string resource = namespaces ? "namespaces" : type->plural;
    std::string kind = namespaces ? "Namespace" : type->kind;
    std::string prefix = namespaces ? "/registry/namespaces/" : type->Prefix(ns);
    auto labels = LabelSelector::Parse(Param(q, "labelSelector"));
    if (!labels.ok()) return Fail(req, BadRequest(labels.error().message()));
    std::set<std::string> supported = namespaces ? std::set<std::string>{"metadata.name", "status.phase"} : type->FieldSelectors();
    auto fields = FieldSelector::Parse(Param(q, "fieldSelector"), supported);
    if (!fields.ok()) return Fail(req, BadRequest(fields.error().message()));
    int64_t timeout = 1800;
    if (std::string t = Param(q, "timeoutSeconds"); !t.empty()) {
      try {
        timeout = std::stoll(t);
      } catch (const std::exception&) {
        return Fail(req, BadRequest("invalid timeoutSeconds: \"" + t + "\""));
      }
      if (timeout <= 0) timeout = 1800;
    }
    std::string rv = Param(q, "resourceVersion");
    bool bookmarks = ParseBool(Param(q, "allowWatchBookmarks"));
    bool send_initial = ParseBool(Param(q, "sendInitialEvents"));
    if (send_initial && (!bookmarks || Param(q, "resourceVersionMatch") != "NotOlderThan")) {
      FieldErrors errs;
      if (Param(q, "resourceVersionMatch") != "NotOlderThan") {
        errs.push_back({FieldError::Type::kForbidden, "resourceVersionMatch", "",
                        "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"});
      }
      if (!bookmarks) {
        errs.push_back({FieldError::Type::kForbidden, "allowWatchBookmarks", "", "sendInitialEvents requires setting allowWatchBookmarks to true"});
      }
      return Fail(req, Invalid("ListOptions", "", errs));
    }
    bool initial = rv.empty() || rv == "0" || send_initial;
    int64_t after = 0;
    if (!rv.empty()) {
      try {
        after = std::stoll(rv);
      } catch (const std::exception&) {
        return Fail(req, BadRequest("invalid resourceVersion: \"" + rv + "\""));
      }
    }
    bool table = WantsTable(req);
    auto matches = [labels = *labels, fields = *fields, only_name](const Json& obj) {
      if (!only_name.empty() && obj["metadata"].value("name", "") != only_name) return false;
      if (!labels.Matches(StringMap(obj["metadata"].value("labels", Json::object())))) return false;
      return fields.Matches([&](const std::string& f) {
        if (f == "metadata.name") return obj["metadata"].value("name", "");
        if (f == "metadata.namespace") return obj["metadata"].value("namespace", "");
        if (f == "status.phase") return obj.contains("status") ? obj["status"].value("phase", "") : std::string();
        return obj.value("type", "");
      });
    };
    auto render = [this, table, type](const char* event, const Json& obj) {
      Json ev = {{"type", event}};
      if (table) {
        std::string obj_rv = obj["metadata"].value("resourceVersion", "");
        ev["object"] = type != nullptr ? TableFor(*type, {obj}, obj_rv, "") : NamespaceTable({obj}, obj_rv);
      } else {
        ev["object"] = obj;
        if (type != nullptr) ShowAggregated(*type, &ev["object"]);
      }
      std::string line = ev.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
      line += '\n';
      return line;
    };
    // Initial state: list now, then watch from the list's revision, so nothing falls between.
    std::vector<std::string> initial_lines;
    if (initial) {
      auto l = store_->List(prefix, "", 0);
      if (!l.ok()) return FailStatus(req, l.error());
      after = l->revision;
      for (store::Object& o : l->items) {
        Json obj = WithRv(Json::parse(o.doc.view()), o.revision);
        if (matches(obj)) initial_lines.push_back(render("ADDED", obj));
      }
      if (send_initial) initial_lines.push_back(BookmarkLine(kind, after, true));
    }
    http::Response head = http::MakeResponse(req, http::HttpStatus::ok, table ? kTableContentType : "application/json", "");
    std::shared_ptr<http::StreamWriter> writer = start_stream(std::move(head), std::chrono::seconds(timeout));
    auto state = std::make_shared<WatchState>();
    state->writer = writer;
    state->kind = kind;
    state->progress = after;
    auto started = std::chrono::steady_clock::now();
    state->deadline = started + std::chrono::seconds(timeout);
    state->next_bookmark = NextBookmark(started, state->deadline);
    writer->OnClosed([state] {
      std::unique_ptr<storage::WatchHandle> h;
      {
        std::lock_guard<std::mutex> l(state->mu);
        state->closed = true;
        h = std::move(state->handle);
      }
      // h is destroyed here, outside the lock: that ends the storage watch.
    });
    for (std::string& line : initial_lines) {
      writer->Write(std::move(line));
      internal::SecureZero(line.data(), line.size());
    }
    auto handle = store_->Watch(prefix, after, [writer, matches, render, state](const std::vector<store::ObjectEvent>& events,
                                                                               const Status& error) {
      std::lock_guard<std::mutex> l(state->mu);
      for (const store::ObjectEvent& e : events) {
        state->progress = std::max(state->progress, e.revision);
        std::optional<Json> now, before;
        if (e.object) now = WithRv(Json::parse(e.object->doc.view()), e.revision);
        if (e.prev) before = WithRv(Json::parse(e.prev->doc.view()), e.revision);
        bool now_match = now && matches(*now);
        bool before_match = before && matches(*before);
        std::string line;
        if (now_match) {
          line = render(before_match ? "MODIFIED" : "ADDED", *now);
        } else if (before_match) {
          line = render("DELETED", now ? *now : *before);
        }
        if (!line.empty()) writer->Write(std::move(line));
      }
      if (!error.ok()) {
        writer->Write(Json{{"type", "ERROR"}, {"object", InternalError("a stored object failed to decrypt").ToJson()}}.dump() + "\n");
        writer->Close();
      }
    });
    if (!handle.ok()) {
      if (handle.error().code() == StatusCode::kOutOfRange) {
        ApiError gone{410, "Expired", handle.error().message(), nullptr};
        writer->Write(Json{{"type", "ERROR"}, {"object", gone.ToJson()}}.dump() + "\n");
      } else {
        writer->Write(Json{{"type", "ERROR"}, {"object", InternalError(handle.error().message()).ToJson()}}.dump() + "\n");
      }
      writer->Close();
      return std::nullopt;
    }
    std::unique_ptr<storage::WatchHandle> orphan;
    {
      std::lock_guard<std::mutex> l(state->mu);
      if (state->closed) {
        orphan = std::move(handle).value();  // the client left already: end the watch now
      } else {
        state->handle = std::move(handle).value();
      }
    }
    if (bookmarks && !table && !orphan) {
      std::lock_guard<std::mutex> l(bookmark_mu_);
      bookmark_watches_.push_back(state);
    }
    return std::nullopt;
  }

  store::ObjectStore* store_;
  Clock* clock_;
  store::History history_;
  int history_versions_;
  std::function<Result<std::optional<Identity>>(std::string_view, std::string*)> token_reviewer_;
  std::function<Result<SecretBytes>(const Identity&, std::chrono::seconds)> token_issuer_;
  const authz::Authorizer* authorizer_;
  audit::Auditor* auditor_;
  std::mutex bookmark_mu_;
  std::condition_variable bookmark_cv_;
  bool bookmark_stop_ = false;
  std::vector<std::weak_ptr<WatchState>> bookmark_watches_;
  std::thread bookmark_thread_;  // last: started in the constructor once the rest exists
};

KubernetesApi::KubernetesApi(store::ObjectStore* store, Clock* clock, const Options& options)
    : impl_(std::make_unique<Impl>(store, clock, options)), pool_(options.workers) {}

KubernetesApi::~KubernetesApi() { pool_.join(); }

Status KubernetesApi::EnsureDefaultNamespaces() { return impl_->EnsureDefaultNamespaces(); }

std::optional<http::Response> KubernetesApi::Serve(const http::Request& req, const http::StreamStarter& start_stream,
                                                   const Identity* who, const std::string& remote) {
  return impl_->Serve(req, start_stream, who, remote);
}

void KubernetesApi::Register(http::Router* router, const std::function<http::Handler(http::Handler)>& guard) {
  http::Handler h = guard([this](const http::Request& req, const http::RequestContext& ctx, http::Responder respond) {
    // Copy the request: the connection's buffer is reused once the handler returns.
    auto copy = std::make_shared<http::Request>(req);
    boost::asio::post(pool_, [this, copy, start = ctx.start_stream, who = ctx.identity, remote = ctx.remote_address,
                              respond = std::move(respond)] {
      if (auto res = impl_->Serve(*copy, start, who.get(), remote)) respond(std::move(*res));
    });
  });
  router->Handle("/api", h);
  router->Handle("/apis", h);
  router->HandlePrefix("/api/", h);
  router->HandlePrefix("/apis/", h);
  router->HandlePrefix("/openapi/", h);
  router->HandlePrefix("/sigil/", h);
}

}  // namespace sigil::kube

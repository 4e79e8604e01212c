// api/kubernetes/impl.h: the Kubernetes face's implementation class, shared by the files it is
// split into by concern (see each section's file). Internal to api/kubernetes; api.h is the
// public interface. The face translates HTTP to registry calls and registry results to
// Kubernetes responses; it never touches the store. Thread safety: handlers run concurrently;
// everything they share is the registry, the authorizer and the auditor (all thread-safe) and
// the watch lists, under bookmark_mu_.
#pragma once

#include <array>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "sigil/api/kubernetes/api.h"
#include "sigil/api/kubernetes/common.h"
#include "sigil/core/pipeline.h"

namespace sigil::kube {

// ---- small helpers (request_info.cc, tables.cc) ----
std::string PercentDecode(std::string_view s, bool plus_is_space);
std::map<std::string, std::string> ParseQuery(std::string_view target);
std::string Param(const std::map<std::string, std::string>& q, const std::string& k);
// Rejects documents nested deeper than kMaxJsonDepth before the parser sees them.
constexpr int kMaxJsonDepth = 100;
bool DepthOk(std::string_view body);
// kube's duration.HumanDuration, as `kubectl get` prints AGE.
std::string HumanDuration(int64_t seconds);
int64_t ParseRfc3339(const std::string& s);
struct Path {
  std::vector<std::string> seg;  // decoded segments
  bool bad = false;
};
Path SplitPath(std::string_view target);
inline bool IsRole(const registry::Resource& t) { return t.kind == "Role" || t.kind == "ClusterRole"; }
inline bool IsSecret(const registry::Resource& t) { return t == registry::Secrets(); }
inline bool IsServiceAccount(const registry::Resource& t) { return t == registry::ServiceAccounts(); }
inline bool IsRbac(const registry::Resource& t) { return t.group == "rbac.authorization.k8s.io"; }

inline const char kTableContentType[] = "application/json;as=Table;v=v1;g=meta.k8s.io";
inline const char kAggregatedContentType[] = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
inline const char kRbacGroup[] = "rbac.authorization.k8s.io";

using core::Reply;
Reply ToReply(const ApiError& e);
Reply ToReply(http::Response res);
http::Response ToResponse(const http::Request& req, Reply r);

// kube-apiserver's 403 for an RBAC denial (impersonation.cc).
ApiError ForbiddenError(const authz::Attributes& a, const Identity* who);

class KubeErrors : public core::ErrorRenderer {
 public:
  Reply Render(const Status& s, const core::RequestInfo& r) const override;
};

class KubernetesApi::Impl {
 public:
  // ---- types

  // ---- request bodies -----------------------------------------------------------------------

  struct Decoded {
    bool ok = false;
    Json json;
    ApiError error;
    std::vector<std::string> duplicates;  // JSON fields given twice ("metadata.name"); the last one wins
  };




  // ---- watch ----------------------------------------------------------------------------------

  struct WatchState {
    std::mutex mu;  // orders event lines and bookmarks, so a bookmark never precedes an event it covers
    std::unique_ptr<registry::WatchHandle> handle;
    bool closed = false;
    // Bookmarks (allowWatchBookmarks=true): the revision every event up to which was sent.
    std::weak_ptr<http::StreamWriter> writer;
    std::string kind;
    int64_t progress = 0;
    std::chrono::steady_clock::time_point next_bookmark, deadline;
  };


  // ---- pipeline.cc
  std::optional<http::Response> Serve(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who,
                                      const std::string& remote);
  std::optional<http::Response> Handle(const http::Request& req, const http::StreamStarter& start_stream, const Identity* who);
  static std::optional<Json> AuditBody(const http::Request& req, const authz::Attributes& a);

  // ---- routing.cc
  static bool ParseBool(const std::string& v);
  // Whether kube-apiserver would indent the answer: `?pretty=` as ParseBool reads it, or,
  // without that parameter, a User-Agent of curl, Wget or a browser.
  static bool WantsPretty(const http::Request& req);
  static bool IsWatch(const http::Request& req);
  std::string Now() const;
  http::Response Reply(const http::Request& req, int code, const Json& body, const std::string& ct = "application/json",
                       const std::vector<std::string>& warnings = {});
  http::Response Fail(const http::Request& req, const ApiError& e);
  static bool WantsTable(const http::Request& req);
  http::Response Route(const http::Request& req, const Identity* who);
  http::Response CollectionRoute(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                                 const std::string& ns, const Identity* who);
  http::Response ObjectRoute(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                             const std::string& ns, const std::string& name, const Identity* who);
  http::Response RbacRoute(const http::Request& req, const std::map<std::string, std::string>& q, const std::vector<std::string>& s,
                           const Identity* who);
  static bool IsGet(const http::Request& req);
  http::Response SigilRoute(const http::Request& req, const std::map<std::string, std::string>& q,
                            const std::vector<std::string>& s, const Identity* who);

  // ---- request_info.cc
  static authz::Attributes RequestAttributes(const http::Request& req);

  // ---- impersonation.cc
  std::optional<ApiError> Impersonate(const http::Request& req, const Identity& who, Identity* out, bool* impersonating) const;
  std::optional<ApiError> MayActAs(const Identity& who, const std::string& user, const std::vector<std::string>& groups,
                                   const std::optional<std::string>& uid,
                                   const std::map<std::string, std::vector<std::string>>& extra) const;
  static ApiError Forbidden(const authz::Attributes& a, const Identity* who);

  // ---- discovery.cc
  static bool WantsAggregated(const http::Request& req);
  static Json SecretsVerbs();
  static Json NamespaceVerbs();
  http::Response Api(const http::Request& req);
  static Json AuthnResources(bool aggregated);
  http::Response Apis(const http::Request& req);
  static Json RbacResources(bool aggregated);
  static Json GroupDoc(const std::string& name);
  std::optional<http::Response> GroupDiscovery(const http::Request& req, const std::vector<std::string>& s,
                                               const std::string& group, const Json& resources);
  static Json ReviewResources(const std::string& group, std::initializer_list<std::pair<const char*, const char*>> kinds,
                              bool aggregated);
  static Json AuthzResources(bool aggregated);
  http::Response ApiV1(const http::Request& req);
  static Json OpenApiDoc(const std::string& gv);
  static Json OpenApiV2Doc();
  http::Response OpenApi(const http::Request& req, const std::vector<std::string>& s);

  // ---- reviews.cc
  http::Response Authentication(const http::Request& req, const Identity* who);
  static bool ReviewAttributes(const Json& spec, authz::Attributes* a);
  http::Response Authorization(const http::Request& req, const Identity* who);

  // ---- namespaces.cc
  http::Response CreateNamespace(const http::Request& req, const std::map<std::string, std::string>& q);
  http::Response GetNamespace(const http::Request& req, const std::string& ns);
  http::Response ListNamespaces(const http::Request& req, const std::map<std::string, std::string>& q);
  http::Response WriteNamespace(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& name);
  http::Response DeleteNamespace(const http::Request& req, const std::string& ns);

  // ---- bodies.cc
  static std::optional<ApiError> CheckDuplicates(const Decoded& d, const std::map<std::string, std::string>& q,
                                                 std::vector<std::string>* warnings);
  static void AddWarnings(http::Response* res, const std::vector<std::string>& warnings);
  Decoded DecodeBody(const http::Request& req, std::string_view kind = "");
  std::string Manager(const http::Request& req, const std::map<std::string, std::string>& q);
  static std::string CheckWriteOptions(const std::map<std::string, std::string>& q);
  static std::optional<ApiError> ApplyPatch(const std::string& content_type, const Json& patch, const Json& current, Json* next);

  // ---- objects.cc
  http::Response CreateObject(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                              const std::string& ns, const Identity* who);
  http::Response GetObject(const registry::Resource& t, const http::Request& req, const std::string& ns, const std::string& name);
  void ShowAggregated(const registry::Resource& t, Json* obj) const;
  std::optional<ApiError> CheckEscalation(const registry::Resource& t, const Identity* who, const std::string& ns,
                                          const std::string& name, const Json& obj);
  void ObserveRbac(const registry::Resource& t, const std::string& ns, const std::string& name, const Json* obj,
                   int64_t revision);
  registry::WriteOptions WriteOptionsFor(const registry::Resource& t, const http::Request& req,
                                         const std::map<std::string, std::string>& q, const Identity* who, const std::string& ns);
  http::Response UpdateObject(const registry::Resource& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                              const std::string& name);
  http::Response PatchObject(const registry::Resource& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                             const std::string& name);
  http::Response ApplyObject(const registry::Resource& t, const Identity* who, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                             const std::string& name);
  http::Response DeleteObject(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                              const std::string& name);

  // ---- lists.cc
  std::optional<ApiError> CheckListVersion(const std::map<std::string, std::string>& q, int64_t* exact);
  http::Response ListObjects(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns);
  http::Response DeleteCollection(const registry::Resource& t, const http::Request& req, const std::map<std::string, std::string>& q,
                                        const std::string& ns);

  // ---- tables.cc
  Json NamespaceTable(const std::vector<Json>& items, const std::string& rv);
  static Json TableHeader(const std::string& rv, std::initializer_list<std::array<const char*, 3>> cols);
  static Json PartialMetadata(const Json& obj);
  Json SecretTable(const std::vector<Json>& items, const std::string& rv, const std::string& cont);
  Json TableFor(const registry::Resource& t, const std::vector<Json>& items, const std::string& rv, const std::string& cont);

  // ---- sigil_routes.cc
  http::Response CreateToken(const http::Request& req, const Identity* who);
  http::Response CreateServiceAccountToken(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                                           const std::string& name, const Identity* who);
  http::Response OpenIdConfiguration(const http::Request& req);
  http::Response OpenIdJwks(const http::Request& req);
  Json ServiceAccountTable(const std::vector<Json>& items, const std::string& rv, const std::string& cont);
  http::Response AuditHash(const http::Request& req);
  static Json VersionSummary(const registry::SecretVersion& v);
  http::Response ListVersions(const http::Request& req, const std::string& ns, const std::string& name);
  http::Response GetVersion(const http::Request& req, const std::string& ns, const std::string& name, const std::string& n);
  // POST /sigil/v1/namespaces/NS/secrets/NAME/rotate: new values for the keys of the Secret's
  // rotation policy now (registry/rotation.h).
  http::Response Rotate(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                        const std::string& name);
  http::Response Rollback(const http::Request& req, const std::map<std::string, std::string>& q, const std::string& ns,
                          const std::string& name);

  // ---- watch.cc
  static std::string BookmarkLine(const std::string& kind, int64_t rv, bool initial_events_end);
  static std::chrono::steady_clock::time_point NextBookmark(std::chrono::steady_clock::time_point now,
                                                           std::chrono::steady_clock::time_point deadline);
  void BookmarkLoop();
  std::optional<http::Response> Watch(const http::Request& req, const http::StreamStarter& start_stream);

  // ---- api.cc
  Impl(registry::Registry* registry, Clock* clock, const KubernetesApi::Options& options);
  ~Impl();
  Status EnsureDefaultNamespaces();

  // ---- members

  registry::Registry* registry_;
  Clock* clock_;
  std::function<Result<std::optional<Identity>>(std::string_view, std::string*)> token_reviewer_;
  std::function<Result<SecretBytes>(const Identity&, std::chrono::seconds)> token_issuer_;
  const auth::ServiceAccountIssuer* sa_issuer_;
  authz::Authorizer* authorizer_;
  audit::Auditor* auditor_;
  core::Pipeline pipeline_;
  KubeErrors errors_;
  std::mutex bookmark_mu_;
  std::condition_variable bookmark_cv_;
  bool bookmark_stop_ = false;
  std::vector<std::weak_ptr<WatchState>> bookmark_watches_;
  // Every watch still streaming, so that the API can end them all when it is destroyed.
  std::vector<std::weak_ptr<WatchState>> live_watches_;
  std::thread bookmark_thread_;  // last: started in the constructor once the rest exists
};

}  // namespace sigil::kube

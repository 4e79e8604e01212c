// registry/resource.h: the kinds of Kubernetes objects the registry keeps, and the strategy of
// each (kube-apiserver's RESTCreateStrategy / RESTUpdateStrategy): how a client's object is
// turned into the stored form, how it is validated on create and on update, and whether its
// writes keep a version history. The face and the registry never switch on a kind's name; what
// differs between kinds is here. Strategies are stateless and thread-safe.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sigil/registry/validation.h"

namespace sigil::registry {

// The object a strategy made of a client's body, or the error to answer (400 with
// kube-apiserver's decoding message).
struct Prepared {
  std::optional<Json> obj;
  ApiError error;
  std::vector<std::string> warnings;  // unknown fields under fieldValidation=Warn
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  // Checks the body's shape and unknown fields (`field_validation`: Strict, Warn or Ignore) and
  // returns the object to store: kind and apiVersion set, metadata.namespace set to `ns` (or
  // dropped for cluster-scoped kinds). Holds secret values for Secrets.
  virtual Prepared PrepareForWrite(const Json& in, const std::string& ns, const std::string& field_validation) const = 0;
  // Field errors of a prepared object (kube-apiserver's ValidateX), empty when valid.
  virtual FieldErrors Validate(const Json& obj) const = 0;
  // What an update may not change (a Secret's type and data once immutable, a binding's
  // roleRef), besides Validate.
  virtual FieldErrors ValidateUpdate(const Json& old_obj, const Json& new_obj) const = 0;
  // Whether every write records a version (store/history.h).
  virtual bool KeepsHistory() const { return false; }
  // The fields a fieldSelector may name, and their values on an object.
  virtual std::set<std::string> FieldSelectors() const { return {"metadata.name", "metadata.namespace"}; }
  virtual std::string FieldValue(const Json& obj, const std::string& field) const;
};

struct Resource {
  std::string group;  // "" for the core group
  std::string kind;
  std::string plural;
  bool namespaced = true;
  const Strategy* strategy = nullptr;

  std::string ApiVersion() const { return group.empty() ? "v1" : group + "/v1"; }
  // How kube-apiserver names the resource in messages: "secrets", "roles.rbac.authorization.k8s.io".
  std::string Qualified() const { return group.empty() ? plural : plural + "." + group; }
  // Where its objects live: /registry/<plural>/[<namespace>/]<name>, as kube-apiserver keeps them.
  std::string Prefix(const std::string& ns) const { return "/registry/" + plural + "/" + (ns.empty() ? "" : ns + "/"); }
  std::string Key(const std::string& ns, const std::string& name) const { return Prefix(namespaced ? ns : "") + name; }
  bool operator==(const Resource& o) const { return plural == o.plural && group == o.group; }
};

extern const char kRbacGroup[];
const Resource& Secrets();
const Resource& ServiceAccounts();
const Resource& Namespaces();
const Resource& Roles();
const Resource& ClusterRoles();
const Resource& RoleBindings();
const Resource& ClusterRoleBindings();
// The four RBAC kinds, in discovery order.
const std::vector<const Resource*>& RbacResources();
// The RBAC kind with this plural, or null.
const Resource* RbacResource(const std::string& plural);
// Kinds whose objects live inside a namespace and go with it (the namespace cascade).
const std::vector<const Resource*>& NamespacedResources();

// A kube error naming the resource as kube-apiserver does: the message says "plural.group",
// the details carry the plural and the group apart.
ApiError ForResource(ApiError e, const Resource& r);
// 422 Invalid naming "Kind.group", details with kind and group apart.
ApiError InvalidFor(const Resource& r, const std::string& name, const FieldErrors& errs);

}  // namespace sigil::registry

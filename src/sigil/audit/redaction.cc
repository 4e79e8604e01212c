#include "sigil/audit/redaction.h"

#include <cctype>
#include <set>

#include "sigil/base/encoding.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::audit {
namespace {

using Json = nlohmann::ordered_json;
constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";

// What sits at a position of a body about Secrets. A body is read as the union of every shape
// the Secrets paths send or answer (Secret, SecretList, WatchEvent, Table, Status,
// DeleteOptions, SecretVersionList, SecretVersion, a rollback request): their members never
// disagree on what a name means, so no `kind` (which a client chooses) needs to be trusted.
enum class Pos {
  kDoc,          // one of the shapes above
  kMetadata,     // ObjectMeta or ListMeta
  kAnnotations,  // metadata.annotations
  kLabels,       // metadata.labels
  kData,         // data: values in base64
  kStringData,   // stringData: values as they are
  kDataValue,    // one data value: hashed as its decoded bytes
  kValue,        // one secret value (stringData, last-applied): hashed whole
  kDocs,         // items: each a kDoc
  kRows,         // a Table's rows
  kRow,
  kCells,
  kScalar,  // a string, number or boolean that is no secret (name, type, a label's value)
  kKeep,    // a structure that holds no values (managedFields, Status details, version keys)
  kOpaque,  // not a member these shapes have: hashed whole
};

const std::set<std::string, std::less<>>& DocScalars() {
  // clang-format off
  static const std::set<std::string, std::less<>> k = {
      "kind", "apiVersion", "type", "immutable",                      // Secret, WatchEvent
      "status", "message", "reason", "code",                          // Status
      "gracePeriodSeconds", "orphanDependents", "propagationPolicy",  // DeleteOptions
      "version", "operation", "time", "manager", "resourceVersion",   // SecretVersion, rollback
      "deleted", "uid", "keep", "current"};                           // SecretVersionList
  // clang-format on
  return k;
}
const std::set<std::string, std::less<>>& DocStructures() {
  static const std::set<std::string, std::less<>> k = {"details", "columnDefinitions", "versions",
                                                       "keys",    "preconditions",     "dryRun"};
  return k;
}
const std::set<std::string, std::less<>>& MetaScalars() {
  static const std::set<std::string, std::less<>> k = {"name",
                                                       "generateName",
                                                       "namespace",
                                                       "selfLink",
                                                       "uid",
                                                       "resourceVersion",
                                                       "generation",
                                                       "creationTimestamp",
                                                       "deletionTimestamp",
                                                       "deletionGracePeriodSeconds",
                                                       "continue",
                                                       "remainingItemCount"};
  return k;
}

Pos Child(Pos parent, std::string_view name) {
  switch (parent) {
    case Pos::kDoc:
      if (name == "metadata") return Pos::kMetadata;
      if (name == "data") return Pos::kData;
      if (name == "stringData") return Pos::kStringData;
      if (name == "items") return Pos::kDocs;
      if (name == "object") return Pos::kDoc;
      if (name == "rows") return Pos::kRows;
      if (DocScalars().contains(name)) return Pos::kScalar;
      if (DocStructures().contains(name)) return Pos::kKeep;
      return Pos::kOpaque;
    case Pos::kMetadata:
      if (name == "annotations") return Pos::kAnnotations;
      if (name == "labels") return Pos::kLabels;
      if (name == "ownerReferences" || name == "finalizers" || name == "managedFields")
        return Pos::kKeep;
      if (MetaScalars().contains(name)) return Pos::kScalar;
      return Pos::kOpaque;
    case Pos::kAnnotations:
      return name == kLastApplied ? Pos::kValue : Pos::kScalar;
    case Pos::kLabels:
    case Pos::kCells:
      return Pos::kScalar;
    case Pos::kData:
      return Pos::kDataValue;
    case Pos::kStringData:
      return Pos::kValue;
    case Pos::kDocs:
      return Pos::kDoc;
    case Pos::kRows:
      return Pos::kRow;
    case Pos::kRow:
      if (name == "object") return Pos::kDoc;
      if (name == "cells") return Pos::kCells;
      if (name == "conditions") return Pos::kKeep;
      return Pos::kOpaque;
    case Pos::kKeep:
      return Pos::kKeep;
    case Pos::kDataValue:
    case Pos::kValue:
    case Pos::kScalar:
    case Pos::kOpaque:
      return Pos::kOpaque;  // below a value: part of it
  }
  return Pos::kOpaque;
}

void Wipe(Json* v) {
  if (v->is_string()) {
    std::string& s = v->get_ref<std::string&>();
    internal::SecureZero(s.data(), s.size());
  } else if (v->is_structured()) {
    for (Json& e : *v) Wipe(&e);
  }
}

// Replaces *v (not null) by the hash of its bytes: a string's text, or (base64) the bytes it
// decodes to when it decodes; anything else its JSON text.
void HashWhole(Json* v, const ValueHasher& hash, bool base64 = false) {
  if (v->is_null()) return;  // null is no value (in a patch it deletes)
  std::string h;
  if (v->is_string()) {
    const std::string& s = v->get_ref<const std::string&>();
    std::optional<Result<SecretBytes>> raw;
    if (base64) raw = Base64DecodeSecret(s);
    h = raw && raw->ok() ? hash((*raw)->view()) : hash(s);
  } else {
    std::string text = v->dump(-1, ' ', false, Json::error_handler_t::replace);
    h = hash(text);
    internal::SecureZero(text.data(), text.size());
  }
  Wipe(v);
  *v = std::move(h);
}

// Redacts *v at `pos`. `depth` counts the kDoc positions above it; false when they nest deeper
// than kMaxRedactionDepth (the body is then not recorded).
[[nodiscard]] bool Redact(Pos pos, Json* v, int depth, const ValueHasher& hash) {
  if (v->is_null()) return true;
  switch (pos) {
    case Pos::kDoc:
      if (++depth > kMaxRedactionDepth) return false;
      [[fallthrough]];
    case Pos::kMetadata:
    case Pos::kAnnotations:
    case Pos::kLabels:
    case Pos::kData:
    case Pos::kStringData:
    case Pos::kRow:
      if (!v->is_object()) {
        HashWhole(v, hash);
        return true;
      }
      for (auto& [name, member] : v->items()) {
        if (!Redact(Child(pos, name), &member, depth, hash)) return false;
      }
      return true;
    case Pos::kDocs:
    case Pos::kRows:
    case Pos::kCells:
      if (!v->is_array()) {
        HashWhole(v, hash);
        return true;
      }
      for (Json& e : *v) {
        if (!Redact(Child(pos, ""), &e, depth, hash)) return false;
      }
      return true;
    case Pos::kDataValue:
      HashWhole(v, hash, /*base64=*/true);
      return true;
    case Pos::kValue:
    case Pos::kOpaque:
      HashWhole(v, hash);
      return true;
    case Pos::kScalar:
      if (v->is_structured()) HashWhole(v, hash);
      return true;
    case Pos::kKeep:
      return true;
  }
  return false;
}

// Where a JSON pointer (RFC 6901) leads in a body about Secrets, and how many kDoc positions it
// passes through on the way; nullopt when `pointer` is not a JSON pointer ("data/pw", "/a~2").
std::optional<std::pair<Pos, int>> Navigate(std::string_view pointer) {
  Pos pos = Pos::kDoc;
  int depth = 0;
  if (pointer.empty()) return std::pair{pos, depth};
  if (pointer[0] != '/') return std::nullopt;
  size_t i = 1;
  for (;;) {
    size_t end = pointer.find('/', i);
    std::string_view raw =
        pointer.substr(i, end == std::string_view::npos ? std::string_view::npos : end - i);
    std::string token;
    for (size_t k = 0; k < raw.size(); ++k) {
      if (raw[k] != '~') {
        token += raw[k];
      } else if (k + 1 < raw.size() && (raw[k + 1] == '0' || raw[k + 1] == '1')) {
        token += raw[++k] == '0' ? '~' : '/';
      } else {
        return std::nullopt;
      }
    }
    if (pos == Pos::kDoc) ++depth;
    pos = Child(pos, token);
    if (end == std::string_view::npos) break;
    i = end + 1;
  }
  return std::pair{pos, depth};
}

// A JSON patch: each operation's value is redacted as what it becomes at its path.
std::optional<Json> RedactJsonPatch(Json body, const ValueHasher& hash) {
  if (!body.is_array()) return std::nullopt;
  for (Json& op : body) {
    if (!op.is_object()) {
      HashWhole(&op, hash);
      continue;
    }
    std::optional<std::pair<Pos, int>> at;
    if (op.contains("path") && op["path"].is_string())
      at = Navigate(op["path"].get_ref<const std::string&>());
    for (auto& [name, member] : op.items()) {
      if (name == "op" || name == "path" || name == "from") {
        if (!member.is_string()) HashWhole(&member, hash);
      } else if (name == "value" && at) {
        if (!Redact(at->first, &member, at->second, hash)) return std::nullopt;
      } else {
        HashWhole(&member, hash);  // a value whose place is unknown, or a member RFC 6902 has not
      }
    }
  }
  return body;
}

bool IsNonSecretKind(std::string_view group, std::string_view resource) {
  if (group.empty()) return resource == "namespaces";
  if (group == "rbac.authorization.k8s.io") {
    return resource == "roles" || resource == "clusterroles" || resource == "rolebindings" ||
           resource == "clusterrolebindings";
  }
  if (group == "authentication.k8s.io") return resource == "selfsubjectreviews";
  if (group == "authorization.k8s.io") {
    return resource == "selfsubjectaccessreviews" || resource == "selfsubjectrulesreviews" ||
           resource == "subjectaccessreviews";
  }
  return false;
}

}  // namespace

std::optional<Json> RedactBody(std::string_view api_group, std::string_view resource,
                               std::string_view subresource, std::string_view content_type,
                               Json body, const ValueHasher& hash) {
  if (resource != "secrets") {
    // Only kinds whose bodies hold no secret values are recorded as they are; for anything
    // else sigil cannot know where values sit.
    if (subresource.empty() && IsNonSecretKind(api_group, resource)) return body;
    return std::nullopt;
  }
  if (!subresource.empty() && subresource != "versions" && subresource != "rollback")
    return std::nullopt;
  std::string_view media = content_type.substr(0, content_type.find(';'));
  if (media == "application/json-patch+json") {
    if (!subresource.empty()) return std::nullopt;
    return RedactJsonPatch(std::move(body), hash);
  }
  if (media != "application/json" && media != "application/merge-patch+json" &&
      media != "application/strategic-merge-patch+json" &&
      media != "application/apply-patch+yaml") {
    return std::nullopt;
  }
  if (!body.is_object() || !Redact(Pos::kDoc, &body, 0, hash)) return std::nullopt;
  return body;
}

Json RedactAllStrings(Json body, const ValueHasher& hash) {
  // Iterative, so a deeply nested body cannot exhaust the stack.
  std::vector<Json*> todo = {&body};
  while (!todo.empty()) {
    Json* j = todo.back();
    todo.pop_back();
    if (j->is_string()) {
      std::string& v = j->get_ref<std::string&>();
      std::string h = hash(v);
      internal::SecureZero(v.data(), v.size());
      *j = std::move(h);
    } else if (j->is_structured()) {
      for (Json& e : *j) todo.push_back(&e);
    }
  }
  return body;
}

namespace {

// The parameter name, percent-decoded and lowercased (undecodable escapes kept as they are).
std::string QueryName(std::string_view raw) {
  std::string out;
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%' && i + 2 < raw.size() && std::isxdigit(static_cast<unsigned char>(raw[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(raw[i + 2]))) {
      c = static_cast<char>(std::stoi(std::string(raw.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (c == '+') {
      c = ' ';
    }
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool CarriesCredential(std::string_view raw_name) {
  std::string name = QueryName(raw_name);
  for (std::string_view word : {"token", "secret", "pass", "pwd", "pw", "jwt", "key", "auth", "credential", "signature", "bearer",
                                "session", "cookie", "assertion", "otp"}) {
    if (name.find(word) != std::string::npos) return true;
  }
  return name == "sig" || name == "code";
}

// Whether a value has the shape of a credential whatever its parameter is called: a sigil
// token, a Vault token, a JWT.
bool LooksLikeCredential(std::string_view value) {
  std::string v = QueryName(value);
  return v.starts_with("sgl_") || v.starts_with("hvs.") || v.starts_with("hvb.") || v.starts_with("eyj");
}

}  // namespace

std::string RedactQuery(std::string_view uri) {
  size_t q = uri.find('?');
  size_t hash = uri.find('#');
  if (q == std::string_view::npos || (hash != std::string_view::npos && hash < q)) {
    // No query (a fragment, which a client should never send, is not recorded either).
    return hash == std::string_view::npos ? std::string(uri) : std::string(uri.substr(0, hash)) + "#REDACTED";
  }
  std::string out(uri.substr(0, q + 1));
  std::string_view query = uri.substr(q + 1, hash == std::string_view::npos ? std::string_view::npos : hash - q - 1);
  while (true) {
    size_t sep = query.find_first_of("&;");
    std::string_view param = query.substr(0, sep);
    size_t eq = param.find('=');
    std::string_view name = param.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? param : param.substr(eq + 1);
    if (eq != std::string_view::npos && (CarriesCredential(name) || LooksLikeCredential(value))) {
      out.append(name);
      out.append("=REDACTED");
    } else if (eq == std::string_view::npos && LooksLikeCredential(value)) {
      out.append("REDACTED");
    } else {
      out.append(param);
    }
    if (sep == std::string_view::npos) break;
    out += query[sep];
    query = query.substr(sep + 1);
  }
  if (hash != std::string_view::npos) out.append("#REDACTED");
  return out;
}

}  // namespace sigil::audit

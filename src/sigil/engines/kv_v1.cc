#include "sigil/engines/kv_v1.h"

#include <set>

#include "sigil/base/clock.h"

namespace sigil::engines {
namespace {

constexpr int64_t kSystemDefaultTtl = 768 * 3600;  // Vault's default_lease_ttl

class KvV1 final : public SecretsEngine {
 public:
  KvV1(const Mount& mount, Storage storage)
      : default_ttl_(mount.default_lease_ttl > 0 ? mount.default_lease_ttl : mount.max_lease_ttl), storage_(std::move(storage)) {}

  Result<std::optional<bool>> Exists(const Request& r) override {
    if (!ValidEntryPath(r.path)) return std::optional<bool>();
    SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(r.path));
    return std::optional<bool>(o.has_value());
  }

  Result<Response> Handle(const Request& r) override {
    if (r.op == Operation::kList) return List(r.path);
    if (r.path.empty() || r.path.ends_with("/")) {
      // A folder holds no entry: a read finds nothing (listing needs LIST, and the "list"
      // capability), anything else is refused.
      if (r.op == Operation::kRead) return Response::NotFound();
      return Response::Error(405, "unsupported operation");
    }
    if (!ValidEntryPath(r.path)) return Response::Error(400, "invalid path");
    switch (r.op) {
      case Operation::kRead: {
        SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(r.path));
        if (!o) return Response::NotFound();
        Json data = Json::parse(o->doc.view(), nullptr, false);
        if (!data.is_object()) return DataLossError("a stored KV entry is not a JSON object");
        Response out = Response::Ok(data);
        out.lease_duration = default_ttl_ > 0 ? default_ttl_ : kSystemDefaultTtl;
        if (auto it = data.find("ttl"); it != data.end()) {
          std::optional<std::chrono::seconds> ttl;
          if (it->is_number_unsigned() || it->is_number_integer()) {
            ttl = std::chrono::seconds(std::max<int64_t>(0, it->get<int64_t>()));
          } else if (it->is_string()) {
            ttl = ParseGoDuration(it->get_ref<const std::string&>(), int64_t{100} * 365 * 24 * 3600);
          }
          if (ttl) out.lease_duration = ttl->count();
        }
        return out;
      }
      case Operation::kCreate:
      case Operation::kUpdate: {
        if (r.data.empty()) return Response::Error(400, "no data provided");
        SecretBytes doc(r.data.dump());
        for (int attempt = 0; attempt < 8; ++attempt) {
          SIGIL_ASSIGN_OR_RETURN(std::optional<store::Object> o, storage_.Get(r.path));
          if (o && r.create_only) return Response::Error(403, "permission denied");
          Result<int64_t> put = storage_.Put(r.path, doc, o ? std::optional<int64_t>(o->revision) : std::nullopt);
          if (put.ok()) return Response::NoContent();
          if (put.error().code() != StatusCode::kAborted && put.error().code() != StatusCode::kAlreadyExists) {
            return put.error();
          }
        }
        return AbortedError("the entry kept changing; try again");
      }
      case Operation::kDelete:
        SIGIL_RETURN_IF_ERROR(storage_.Delete(r.path));
        return Response::NoContent();
      default:
        return Response::Error(405, "unsupported operation");
    }
  }

 private:
  Result<Response> List(std::string prefix) {
    if (!prefix.empty() && !prefix.ends_with("/")) prefix += "/";
    if (!prefix.empty() && !ValidEntryPath(prefix.substr(0, prefix.size() - 1))) return Response::Error(400, "invalid path");
    return ListFolder(storage_, prefix);
  }

  const int64_t default_ttl_;
  Storage storage_;
};

}  // namespace

std::unique_ptr<SecretsEngine> NewKvV1(const Mount& mount, Storage storage) {
  return std::make_unique<KvV1>(mount, std::move(storage));
}

}  // namespace sigil::engines

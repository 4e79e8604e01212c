// Fuzzes the decoding of a stored KMS v2 value's EncryptedObject (kms/envelope.h): the store is
// outside the trust boundary, so any bytes after "k8s:enc:kms:v2:<name>:" must be refused
// cleanly or come back as fields that satisfy kube-apiserver's checks.
#include <cstdint>
#include <string_view>

#include "sigil/base/check.h"
#include "sigil/kms/envelope.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto r = sigil::kms::ParseEncryptedObject(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) {
    SIGIL_CHECK(r.error().code() == sigil::StatusCode::kDataLoss);
    return 0;
  }
  SIGIL_CHECK(r->type == 0 || r->type == 1);
  SIGIL_CHECK(!r->data.empty());
  SIGIL_CHECK(!r->key_id.empty() && r->key_id.size() <= 1024);
  SIGIL_CHECK(!r->wrapped.empty() && r->wrapped.size() <= 1024);
  size_t total = 0;
  for (const auto& [k, v] : r->annotations) total += k.size() + v.size();
  SIGIL_CHECK(total <= 32 * 1024);
  return 0;
}

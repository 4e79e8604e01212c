#include "sigil/crypto/shamir.h"

extern "C" {
#include <libgfshare.h>
}

#include <array>
#include <memory>
#include <mutex>
#include <set>

#include "sigil/crypto/random.h"

namespace sigil::crypto {
namespace {

void FillFromCsprng(unsigned char* out, unsigned int n) { RandomFill({out, n}); }

void UseCsprng() {
  static std::once_flag once;
  std::call_once(once, [] {
    Init();
    gfshare_fill_rand = &FillFromCsprng;
  });
}

struct CtxFree {
  void operator()(gfshare_ctx* c) const { gfshare_ctx_free(c); }
};
using Ctx = std::unique_ptr<gfshare_ctx, CtxFree>;

}  // namespace

Result<std::vector<SecretBytes>> ShamirSplit(const SecretBytes& secret, int shares, int threshold) {
  if (secret.empty()) return InvalidArgumentError("cannot split an empty secret");
  if (shares < 1 || shares > kMaxShamirShares) return InvalidArgumentError("shares must be between 1 and 255");
  if (threshold < 1 || threshold > shares) return InvalidArgumentError("threshold must be between 1 and the number of shares");
  if (shares > 1 && threshold < 2) return InvalidArgumentError("threshold must be at least 2 when there is more than one share");
  std::vector<SecretBytes> out;
  if (shares == 1) {
    out.push_back(secret.Clone());
    return out;
  }
  UseCsprng();
  // Distinct non-zero x coordinates, drawn at random as Vault does (their order says nothing).
  std::vector<unsigned char> xs;
  std::set<unsigned char> used;
  while (xs.size() < static_cast<size_t>(shares)) {
    uint8_t x = 0;
    RandomFill({&x, 1});
    if (x != 0 && used.insert(x).second) xs.push_back(x);
  }
  Ctx ctx(gfshare_ctx_init_enc(xs.data(), static_cast<unsigned>(shares), static_cast<unsigned char>(threshold),
                               static_cast<unsigned>(secret.size())));
  if (!ctx) return InternalError("libgfshare refused the split parameters");
  SecretBytes copy = secret.Clone();  // the library takes a non-const pointer
  gfshare_ctx_enc_setsecret(ctx.get(), copy.data());
  for (int i = 0; i < shares; ++i) {
    SecretBytes share(secret.size() + 1);
    gfshare_ctx_enc_getshare(ctx.get(), static_cast<unsigned char>(i), share.data());
    share.data()[secret.size()] = xs[i];
    out.push_back(std::move(share));
  }
  return out;
}

Result<SecretBytes> ShamirCombine(const std::vector<SecretBytes>& shares) {
  if (shares.size() < 2) return InvalidArgumentError("at least two shares are needed");
  if (shares.size() > static_cast<size_t>(kMaxShamirShares)) return InvalidArgumentError("too many shares");
  const size_t n = shares[0].size();
  if (n < 2) return InvalidArgumentError("share is too short");
  std::vector<unsigned char> xs;
  std::set<unsigned char> used;
  for (const SecretBytes& s : shares) {
    if (s.size() != n) return InvalidArgumentError("shares have different lengths");
    unsigned char x = s.data()[n - 1];
    if (x == 0 || !used.insert(x).second) return InvalidArgumentError("duplicate or invalid share");
    xs.push_back(x);
  }
  UseCsprng();
  Ctx ctx(gfshare_ctx_init_dec(xs.data(), static_cast<unsigned>(xs.size()), static_cast<unsigned>(n - 1)));
  if (!ctx) return InternalError("libgfshare refused the shares");
  for (size_t i = 0; i < shares.size(); ++i) {
    SecretBytes y(shares[i].data(), n - 1);
    gfshare_ctx_dec_giveshare(ctx.get(), static_cast<unsigned char>(i), y.data());
  }
  SecretBytes secret(n - 1);
  gfshare_ctx_dec_extract(ctx.get(), secret.data());
  return secret;
}

}  // namespace sigil::crypto

// crypto/shamir.h: Shamir secret sharing over GF(2^8), composed from Debian's libgfshare.
//
// A secret of n bytes is split into `shares` shares, any `threshold` of which give it back;
// fewer reveal nothing about it. Each share is the n bytes of the polynomials' values followed
// by one byte, the x coordinate (random, distinct, non-zero): n+1 bytes, the shape Vault's
// shares have. Combining shares that do not belong together yields wrong bytes, not an error:
// callers authenticate the result (the Shamir seal unwraps an AES-GCM-sealed root key with it).
// libgfshare draws its coefficients from the function pointer it exports; this module points it
// at libsodium's CSPRNG before any split. libgfshare scrubs its buffers before freeing them.
// Thread safety: both functions are thread-safe.
#pragma once

#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::crypto {

inline constexpr int kMaxShamirShares = 255;

// kInvalidArgument unless 1 <= threshold <= shares <= 255, threshold >= 2 when shares > 1,
// and the secret is non-empty. With one share, the share is the secret itself (as Vault does).
Result<std::vector<SecretBytes>> ShamirSplit(const SecretBytes& secret, int shares, int threshold);

// The secret from `shares` (each n+1 bytes, as ShamirSplit made them). kInvalidArgument when
// fewer than two are given, their sizes differ, or two share an x coordinate.
Result<SecretBytes> ShamirCombine(const std::vector<SecretBytes>& shares);

}  // namespace sigil::crypto

// Fuzzes JWT parsing and verification (service-account tokens arrive from any client), and the
// JWKS parser.
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cstdint>
#include <string_view>

#include "sigil/crypto/jwt.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static sigil::crypto::JwtKeySet* keys = [] {
    auto* k = new sigil::crypto::JwtKeySet();
    EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    unsigned char* der = nullptr;
    int len = i2d_PUBKEY(ec, &der);
    std::string pem = "-----BEGIN PUBLIC KEY-----\n";
    static const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string b64;
    for (int i = 0; i < len; i += 3) {
      uint32_t n = static_cast<uint32_t>(der[i]) << 16 | (i + 1 < len ? der[i + 1] << 8 : 0) | (i + 2 < len ? der[i + 2] : 0);
      b64 += kB64[n >> 18 & 63];
      b64 += kB64[n >> 12 & 63];
      b64 += i + 1 < len ? kB64[n >> 6 & 63] : '=';
      b64 += i + 2 < len ? kB64[n & 63] : '=';
    }
    pem += b64 + "\n-----END PUBLIC KEY-----\n";
    OPENSSL_free(der);
    EVP_PKEY_free(ec);
    (void)k->AddPem(pem);
    return k;
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)keys->Verify(in).ok();
  sigil::crypto::JwtKeySet jwks;
  (void)jwks.AddJwks(in);
  return 0;
}

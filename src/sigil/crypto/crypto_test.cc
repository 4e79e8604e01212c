// Known-answer tests from the published specifications (NIST SP 800-38A/38D vectors, RFC 4231,
// RFC 5869, FIPS 180-2), plus tamper and misuse cases.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "sigil/base/encoding.h"
#include "sigil/crypto/aes.h"
#include "sigil/crypto/hash.h"
#include "sigil/crypto/random.h"
#include "sigil/crypto/secretbox.h"
#include "sigil/crypto/shamir.h"
#include "sigil/crypto/sign.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::crypto {
namespace {

using ::sigil::testing::StatusIs;

std::string H(std::string_view hex) { return *HexDecode(hex); }
SecretBytes K(std::string_view hex) { return SecretBytes(H(hex)); }

TEST(AesGcmTest, NistTestCase14) {
  // GCM spec test case 14: AES-256, zero key, zero IV, one zero block.
  SecretBytes key = K(std::string(64, '0'));
  auto sealed = AesGcmSeal(key, H(std::string(24, '0')), H(std::string(32, '0')), "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed), "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(AesGcmTest, NistTestCase13EmptyPlaintext) {
  SecretBytes key = K(std::string(64, '0'));
  auto sealed = AesGcmSeal(key, H(std::string(24, '0')), "", "");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(HexEncode(*sealed), "530f8afbc74536b9a963b4f1c4cb738b");
}

TEST(AesGcmTest, AadBindsAndTamperFails) {
  SecretBytes key = RandomKey(32);
  std::string nonce = RandomBytes(kGcmNonceSize);
  auto sealed = AesGcmSeal(key, nonce, "plaintext", "/registry/secrets/a/b");
  ASSERT_TRUE(sealed.ok());
  auto opened = AesGcmOpen(key, nonce, *sealed, "/registry/secrets/a/b");
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->view(), "plaintext");
  EXPECT_THAT(AesGcmOpen(key, nonce, *sealed, "/registry/secrets/a/c"), StatusIs(StatusCode::kDataLoss));
  std::string flipped = *sealed;
  flipped[0] ^= 1;
  EXPECT_THAT(AesGcmOpen(key, nonce, flipped, "/registry/secrets/a/b"), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(AesGcmOpen(key, nonce, sealed->substr(0, 5), "/registry/secrets/a/b"),
              StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(AesGcmOpen(RandomKey(32), nonce, *sealed, "/registry/secrets/a/b"),
              StatusIs(StatusCode::kDataLoss));
}

TEST(AesGcmTest, RejectsBadSizes) {
  EXPECT_THAT(AesGcmSeal(RandomKey(31), RandomBytes(12), "x", ""), StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(AesGcmSeal(RandomKey(32), RandomBytes(8), "x", ""), StatusIs(StatusCode::kInvalidArgument));
  for (size_t n : {16u, 24u, 32u}) {
    SecretBytes key = RandomKey(n);
    std::string nonce = RandomBytes(12);
    auto sealed = AesGcmSeal(key, nonce, "v", "");
    ASSERT_TRUE(sealed.ok());
    EXPECT_EQ(AesGcmOpen(key, nonce, *sealed, "")->view(), "v");
  }
}

TEST(AesCbcTest, NistSp80038aF25FirstBlock) {
  SecretBytes key = K("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
  std::string iv = H("000102030405060708090a0b0c0d0e0f");
  auto ct = AesCbcEncrypt(key, iv, H("6bc1bee22e409f96e93d7e117393172a"));
  ASSERT_TRUE(ct.ok());
  // An aligned plaintext gets a full block of PKCS#7 padding.
  ASSERT_EQ(ct->size(), 32u);
  EXPECT_EQ(HexEncode(ct->substr(0, 16)), "f58c4c04d6e5f1ba779eabfb5f7bfbd6");
  auto pt = AesCbcDecrypt(key, iv, *ct);
  ASSERT_TRUE(pt.ok());
  EXPECT_EQ(HexEncode(pt->view()), "6bc1bee22e409f96e93d7e117393172a");
}

TEST(AesCbcTest, PaddingAndTamper) {
  SecretBytes key = RandomKey(32);
  std::string iv = RandomBytes(16);
  for (size_t n : {0u, 1u, 15u, 16u, 17u, 100u}) {
    std::string p(n, 'x');
    auto ct = AesCbcEncrypt(key, iv, p);
    ASSERT_TRUE(ct.ok());
    EXPECT_EQ(ct->size(), (n / 16 + 1) * 16);
    EXPECT_EQ(AesCbcDecrypt(key, iv, *ct)->view(), p);
  }
  auto ct = AesCbcEncrypt(key, iv, "value");
  EXPECT_THAT(AesCbcDecrypt(key, iv, ct->substr(0, 15)), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(AesCbcDecrypt(key, iv, ""), StatusIs(StatusCode::kDataLoss));
  // A wrong key almost always yields bad padding; it must never crash.
  (void)AesCbcDecrypt(RandomKey(32), iv, *ct);
}

TEST(SecretboxTest, RoundTripAndTamper) {
  SecretBytes key = RandomKey(32);
  std::string nonce = RandomBytes(kSecretboxNonceSize);
  auto sealed = SecretboxSeal(key, nonce, "secret");
  ASSERT_TRUE(sealed.ok());
  EXPECT_EQ(sealed->size(), 6 + kSecretboxTagSize);
  EXPECT_EQ(SecretboxOpen(key, nonce, *sealed)->view(), "secret");
  std::string flipped = *sealed;
  flipped.back() ^= 0x80;
  EXPECT_THAT(SecretboxOpen(key, nonce, flipped), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(SecretboxOpen(key, nonce, "short"), StatusIs(StatusCode::kDataLoss));
  EXPECT_THAT(SecretboxSeal(RandomKey(16), nonce, "x"), StatusIs(StatusCode::kInvalidArgument));
}

TEST(HashTest, Sha256Fips180) {
  EXPECT_EQ(HexEncode(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(HashTest, HmacSha256Rfc4231Case1And2) {
  EXPECT_EQ(HexEncode(HmacSha256(SecretBytes(std::string(20, '\x0b')), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(HexEncode(HmacSha256(SecretBytes(std::string_view("Jefe")), "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(HashTest, HkdfRfc5869Case1) {
  SecretBytes ikm(std::string(22, '\x0b'));
  std::string salt = H("000102030405060708090a0b0c");
  std::string info = H("f0f1f2f3f4f5f6f7f8f9");
  const char* okm = "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865";
  auto out = HkdfSha256(ikm, salt, info, 42);
  ASSERT_TRUE(out.ok());
  EXPECT_EQ(HexEncode(out->view()), okm);
  auto expanded = HkdfExpandSha256(K("077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5"), info, 42);
  ASSERT_TRUE(expanded.ok());
  EXPECT_EQ(HexEncode(expanded->view()), okm);
  EXPECT_THAT(HkdfSha256(ikm, salt, info, 255 * 32 + 1), StatusIs(StatusCode::kInvalidArgument));
}

TEST(RandomTest, ConstantTimeEqualsAndRandomness) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abcd"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
  EXPECT_NE(RandomBytes(16), RandomBytes(16));
  EXPECT_EQ(RandomKey(32).size(), 32u);
}

}  // namespace
}  // namespace sigil::crypto

namespace sigil::crypto {
namespace {

TEST(RandomTest, NoncesAreDistinctAcrossRefillsAndThreads) {
  std::set<std::string> seen;
  for (int i = 0; i < 2000; ++i) EXPECT_TRUE(seen.insert(RandomNonce(12)).second);  // spans refills
  std::string a, b;
  std::thread t([&] { a = RandomNonce(24); });
  b = RandomNonce(24);
  t.join();
  EXPECT_NE(a, b);
  EXPECT_EQ(RandomNonce(5000).size(), 5000u);  // larger than the pool: direct from the OS
}

TEST(RandomTest, ForkedChildDoesNotReuseParentNonces) {
  (void)RandomNonce(12);  // fill this thread's pool
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  if (pid == 0) {
    std::string n = RandomNonce(12);
    (void)!write(fds[1], n.data(), n.size());
    _exit(0);
  }
  std::string parent = RandomNonce(12);
  std::string child(12, '\0');
  ASSERT_EQ(read(fds[0], child.data(), 12), 12);
  waitpid(pid, nullptr, 0);
  // Without the fork check the child would draw the very bytes the parent drew next.
  EXPECT_NE(parent, child);
}

}  // namespace
}  // namespace sigil::crypto

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "sigil/crypto/jwt.h"

namespace sigil::crypto {
namespace {

TEST(Base64UrlTest, RoundTripsAndIsStrict) {
  for (std::string s : {std::string(""), std::string("f"), std::string("fo"), std::string("foo"), std::string("\xfb\xff", 2)}) {
    EXPECT_EQ(*Base64UrlDecode(Base64UrlEncode(s)), s);
  }
  EXPECT_EQ(Base64UrlEncode(std::string("\xfb\xff", 2)), "-_8");
  EXPECT_FALSE(Base64UrlDecode("Zm9v=").ok());
  EXPECT_FALSE(Base64UrlDecode("+/8").ok());
  EXPECT_FALSE(Base64UrlDecode("Z").ok());
}

TEST(JwtTest, RefusesBadKeysAndMalformedTokens) {
  JwtKeySet keys;
  EXPECT_FALSE(keys.AddPem("not a pem").ok());
  EXPECT_FALSE(keys.AddJwks("{\"keys\":[{\"kty\":\"oct\",\"k\":\"AAAA\"}]}").ok());  // symmetric keys never
  EXPECT_FALSE(keys.AddJwks("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"}]}").ok());
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(1024));
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(small, &der);
  std::string b64 = Base64Encode(std::string(reinterpret_cast<char*>(der), static_cast<size_t>(len)));
  OPENSSL_free(der);
  EVP_PKEY_free(small);
  Status st = keys.AddPem("-----BEGIN PUBLIC KEY-----\n" + b64 + "\n-----END PUBLIC KEY-----\n");
  EXPECT_NE(st.message().find("2048"), std::string::npos);
  for (const char* t : {"", "a.b", "a.b.c.d", ".b.c", "a..c", "a.b.", "eyJhbGciOiJub25lIn0.e30.AAAA"}) {
    EXPECT_FALSE(keys.Verify(t).ok()) << t;
  }
}

TEST(ShamirTest, EveryThresholdSubsetGivesTheSecretAndFewerDoNot) {
  SecretBytes secret = RandomKey(32);
  SIGIL_ASSERT_OK_AND_ASSIGN(std::vector<SecretBytes> shares, ShamirSplit(secret, 5, 3));
  ASSERT_EQ(shares.size(), 5u);
  std::set<uint8_t> xs;
  for (const SecretBytes& s : shares) {
    ASSERT_EQ(s.size(), 33u);
    EXPECT_NE(s.data()[32], 0);
    xs.insert(s.data()[32]);
  }
  EXPECT_EQ(xs.size(), 5u);
  int subsets = 0;
  for (int mask = 0; mask < 32; ++mask) {
    std::vector<SecretBytes> pick;
    for (int i = 0; i < 5; ++i) {
      if (mask & (1 << i)) pick.push_back(shares[i].Clone());
    }
    if (pick.size() < 2) continue;
    SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes got, ShamirCombine(pick));
    if (pick.size() >= 3) {
      EXPECT_TRUE(got.Equals(secret)) << "mask " << mask;
      ++subsets;
    } else {
      EXPECT_FALSE(got.Equals(secret)) << "two shares must not reveal the secret, mask " << mask;
    }
  }
  EXPECT_EQ(subsets, 16);
}

TEST(ShamirTest, SplitsAreRandomAndOneShareIsTheSecret) {
  SecretBytes secret = RandomKey(32);
  SIGIL_ASSERT_OK_AND_ASSIGN(auto a, ShamirSplit(secret, 3, 2));
  SIGIL_ASSERT_OK_AND_ASSIGN(auto b, ShamirSplit(secret, 3, 2));
  EXPECT_NE(a[0].view(), b[0].view());  // fresh coefficients (and x coordinates) per split
  SIGIL_ASSERT_OK_AND_ASSIGN(auto one, ShamirSplit(secret, 1, 1));
  ASSERT_EQ(one.size(), 1u);
  EXPECT_TRUE(one[0].Equals(secret));
  SIGIL_ASSERT_OK_AND_ASSIGN(auto many, ShamirSplit(secret, 255, 255));
  EXPECT_EQ(many.size(), 255u);
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes back, ShamirCombine(many));
  EXPECT_TRUE(back.Equals(secret));
}

TEST(ShamirTest, RefusesBadParametersAndShares) {
  SecretBytes secret = RandomKey(32);
  EXPECT_FALSE(ShamirSplit(secret, 0, 0).ok());
  EXPECT_FALSE(ShamirSplit(secret, 256, 2).ok());
  EXPECT_FALSE(ShamirSplit(secret, 3, 4).ok());
  EXPECT_FALSE(ShamirSplit(secret, 3, 1).ok());
  EXPECT_FALSE(ShamirSplit(SecretBytes(), 3, 2).ok());
  SIGIL_ASSERT_OK_AND_ASSIGN(auto shares, ShamirSplit(secret, 3, 2));
  std::vector<SecretBytes> dup;
  dup.push_back(shares[0].Clone());
  dup.push_back(shares[0].Clone());
  EXPECT_FALSE(ShamirCombine(dup).ok());
  std::vector<SecretBytes> one;
  one.push_back(shares[0].Clone());
  EXPECT_FALSE(ShamirCombine(one).ok());
  std::vector<SecretBytes> uneven;
  uneven.push_back(shares[0].Clone());
  uneven.push_back(SecretBytes(std::string_view("short")));
  EXPECT_FALSE(ShamirCombine(uneven).ok());
}

TEST(DigestTest, KnownAnswersAndRefusals) {
  EXPECT_EQ(HexEncode(*Digest("sha2-256", "abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(HexEncode(*Digest("sha3-256", "abc")), "3a985da74fe225b2045c172d6bd390bd855f086e3e9d525b46bfe24511431532");
  EXPECT_EQ(Digest("sha2-512", "abc")->size(), 64u);
  EXPECT_FALSE(Digest("md5", "abc").ok());
  // RFC 4231 test case 2.
  SecretBytes jefe(std::string_view("Jefe"));
  EXPECT_EQ(HexEncode(*Hmac("sha2-256", jefe, "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(*Hmac("sha2-256", jefe, "x"), HmacSha256(jefe, "x"));
  EXPECT_FALSE(Hmac("crc32", jefe, "x").ok());
}

TEST(ChaChaTest, SealsOpensAndRefusesTampering) {
  SecretBytes key = RandomKey(32);
  std::string nonce = RandomNonce(12);
  SIGIL_ASSERT_OK_AND_ASSIGN(std::string sealed, ChaCha20Poly1305Seal(key, nonce, "plain text", "aad"));
  EXPECT_EQ(sealed.size(), 10u + 16u);
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes back, ChaCha20Poly1305Open(key, nonce, sealed, "aad"));
  EXPECT_EQ(back.view(), "plain text");
  EXPECT_FALSE(ChaCha20Poly1305Open(key, nonce, sealed, "other aad").ok());
  sealed[0] ^= 1;
  EXPECT_FALSE(ChaCha20Poly1305Open(key, nonce, sealed, "aad").ok());
  EXPECT_FALSE(ChaCha20Poly1305Open(RandomKey(32), nonce, sealed, "aad").ok());
  EXPECT_FALSE(ChaCha20Poly1305Seal(RandomKey(16), nonce, "x", "").ok());
}

TEST(SignTest, Ed25519AndEcdsaSignAndVerify) {
  SigningKeyPair ed = NewEd25519();
  ASSERT_EQ(ed.private_key.size(), 32u);
  ASSERT_EQ(ed.public_key.size(), 32u);
  SIGIL_ASSERT_OK_AND_ASSIGN(std::string sig, Ed25519Sign(ed.private_key, "message"));
  EXPECT_EQ(sig.size(), 64u);
  EXPECT_TRUE(Ed25519Verify(ed.public_key, "message", sig));
  EXPECT_FALSE(Ed25519Verify(ed.public_key, "messagf", sig));
  EXPECT_FALSE(Ed25519Verify(NewEd25519().public_key, "message", sig));
  std::string digest = Sha256("message");
  for (const char* curve : {"P-256", "P-384", "P-521"}) {
    SIGIL_ASSERT_OK_AND_ASSIGN(SigningKeyPair ec, NewEcdsa(curve));
    SIGIL_ASSERT_OK_AND_ASSIGN(std::string esig, EcdsaSign(ec.private_key, digest));
    EXPECT_TRUE(EcdsaVerify(ec.public_key, digest, esig)) << curve;
    EXPECT_FALSE(EcdsaVerify(ec.public_key, Sha256("other"), esig));
    EXPECT_TRUE(PublicKeyPem(ec.public_key).starts_with("-----BEGIN PUBLIC KEY-----"));
    // JWS form: r || s, each the field's size; back to DER, it still verifies.
    size_t field = std::string_view(curve) == "P-256" ? 32 : std::string_view(curve) == "P-384" ? 48 : 66;
    SIGIL_ASSERT_OK_AND_ASSIGN(std::string raw, EcdsaDerToRaw(esig, field));
    EXPECT_EQ(raw.size(), 2 * field);
    SIGIL_ASSERT_OK_AND_ASSIGN(std::string der, EcdsaRawToDer(raw));
    EXPECT_TRUE(EcdsaVerify(ec.public_key, digest, der));
    SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes pem, PrivateKeyPem(ec.private_key));
    EXPECT_TRUE(pem.view().starts_with("-----BEGIN EC PRIVATE KEY-----"));
  }
  EXPECT_FALSE(NewEcdsa("P-192").ok());
  EXPECT_FALSE(EcdsaSign(SecretBytes(std::string_view("not a key")), digest).ok());
  EXPECT_FALSE(EcdsaDerToRaw("garbage", 32).ok());
  EXPECT_FALSE(EcdsaRawToDer("odd").ok());
}

TEST(SignTest, RsaSignsWithPssAndPkcs1AndEncryptsWithOaep) {
  SIGIL_ASSERT_OK_AND_ASSIGN(SigningKeyPair rsa, NewRsa(2048));
  EXPECT_FALSE(NewRsa(1024).ok());
  for (const char* hash : {"sha2-256", "sha2-512"}) {
    SIGIL_ASSERT_OK_AND_ASSIGN(std::string digest, Digest(hash, "message"));
    for (RsaPadding padding : {RsaPadding::kPss, RsaPadding::kPkcs1v15}) {
      SIGIL_ASSERT_OK_AND_ASSIGN(std::string sig, RsaSign(rsa.private_key, digest, hash, padding));
      EXPECT_EQ(sig.size(), 256u);
      EXPECT_TRUE(RsaVerify(rsa.public_key, digest, sig, hash, padding));
      RsaPadding other = padding == RsaPadding::kPss ? RsaPadding::kPkcs1v15 : RsaPadding::kPss;
      EXPECT_FALSE(RsaVerify(rsa.public_key, digest, sig, hash, other));
      sig[10] ^= 1;
      EXPECT_FALSE(RsaVerify(rsa.public_key, digest, sig, hash, padding));
    }
  }
  SIGIL_ASSERT_OK_AND_ASSIGN(std::string ct, RsaOaepEncrypt(rsa.public_key, "a data key"));
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes back, RsaOaepDecrypt(rsa.private_key, ct));
  EXPECT_EQ(back.view(), "a data key");
  ct[5] ^= 1;
  EXPECT_FALSE(RsaOaepDecrypt(rsa.private_key, ct).ok());
  EXPECT_FALSE(RsaOaepEncrypt(rsa.public_key, std::string(300, 'x')).ok());  // longer than the key allows
  SIGIL_ASSERT_OK_AND_ASSIGN(SecretBytes pem, PrivateKeyPem(rsa.private_key));
  EXPECT_TRUE(pem.view().starts_with("-----BEGIN RSA PRIVATE KEY-----"));
}

}  // namespace
}  // namespace sigil::crypto

#include "sigil/api/http/tls.h"

#include <arpa/inet.h>
#include <algorithm>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <memory>

#include "sigil/base/file.h"
#include "sigil/crypto/random.h"

namespace sigil::http {
namespace {

template <typename T, void (*F)(T*)>
struct Deleter {
  void operator()(T* p) const { F(p); }
};
using PKeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO, BIO_free_all>>;

Status OpenSslError(const char* what) { return InternalError(std::string("TLS: ") + what + " failed"); }

PKeyPtr NewKey() { return PKeyPtr(EVP_EC_gen("P-256")); }

std::string ToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

SecretBytes KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  long n = BIO_get_mem_data(bio.get(), &data);
  return SecretBytes(reinterpret_cast<const uint8_t*>(data), static_cast<size_t>(n));
}

bool AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return false;
  bool ok = X509_add_ext(cert, ext, -1) == 1;
  X509_EXTENSION_free(ext);
  return ok;
}

enum class CertKind { kCa, kServer, kClient };

Result<X509Ptr> MakeCert(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key,
                         long days, CertKind kind, const std::vector<std::string>& sans,
                         const std::vector<std::string>& orgs = {"sigil"}) {
  X509Ptr cert(X509_new());
  if (!cert) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  std::string serial = crypto::RandomBytes(16);
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(reinterpret_cast<const unsigned char*>(serial.data()), 16, nullptr);
  BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60 * 60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 60 * 60);
  X509_set_pubkey(cert.get(), subject_key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const std::string& o : orgs) {
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(o.c_str()), -1, -1, 0);
  }
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509* iss = issuer != nullptr ? issuer : cert.get();
  X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
  bool ok = AddExt(cert.get(), iss, NID_subject_key_identifier, "hash");
  if (kind == CertKind::kCa) {
    ok = ok && AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
         AddExt(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else if (kind == CertKind::kClient) {
    ok = ok && AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature") &&
         AddExt(cert.get(), iss, NID_ext_key_usage, "clientAuth") &&
         AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always");
  } else {
    std::string san;
    for (const std::string& h : sans) {
      unsigned char buf[16];
      bool ip = inet_pton(AF_INET, h.c_str(), buf) == 1 || inet_pton(AF_INET6, h.c_str(), buf) == 1;
      if (!san.empty()) san += ",";
      san += (ip ? "IP:" : "DNS:") + h;
    }
    ok = ok && AddExt(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE") &&
         AddExt(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
         AddExt(cert.get(), iss, NID_ext_key_usage, "serverAuth") &&
         AddExt(cert.get(), iss, NID_authority_key_identifier, "keyid:always") &&
         AddExt(cert.get(), iss, NID_subject_alt_name, san);
  }
  if (!ok) return OpenSslError("certificate extensions");
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return OpenSslError("X509_sign");
  return cert;
}

}  // namespace

Result<CertificateSet> GenerateCertificates(const std::vector<std::string>& hosts) {
  PKeyPtr ca_key = NewKey(), key = NewKey();
  if (!ca_key || !key) return OpenSslError("key generation");
  SIGIL_ASSIGN_OR_RETURN(X509Ptr ca, MakeCert(ca_key.get(), "sigil-ca", nullptr, ca_key.get(), 3650, CertKind::kCa, {}));
  std::vector<std::string> sans = {"localhost", "127.0.0.1", "::1"};
  for (const std::string& h : hosts) {
    if (std::find(sans.begin(), sans.end(), h) == sans.end()) sans.push_back(h);
  }
  SIGIL_ASSIGN_OR_RETURN(X509Ptr cert, MakeCert(key.get(), "sigil", ca.get(), ca_key.get(), 365, CertKind::kServer, sans));
  CertificateSet set;
  set.ca_cert_pem = ToPem(ca.get());
  set.cert_pem = ToPem(cert.get()) + set.ca_cert_pem;
  set.key_pem = KeyToPem(key.get());
  set.ca_key_pem = KeyToPem(ca_key.get());
  return set;
}

Result<ClientCertificate> IssueClientCertificate(const CertificateSet& set, const std::string& user,
                                                 const std::vector<std::string>& groups, long days) {
  if (set.ca_key_pem.empty()) return FailedPreconditionError("the CA key is not available to issue client certificates");
  BioPtr ca_bio(BIO_new_mem_buf(set.ca_cert_pem.data(), static_cast<int>(set.ca_cert_pem.size())));
  X509Ptr ca(PEM_read_bio_X509(ca_bio.get(), nullptr, nullptr, nullptr));
  BioPtr key_bio(BIO_new_mem_buf(set.ca_key_pem.data(), static_cast<int>(set.ca_key_pem.size())));
  PKeyPtr ca_key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!ca || !ca_key) return InvalidArgumentError("TLS: the CA certificate or key cannot be parsed");
  PKeyPtr key = NewKey();
  if (!key) return OpenSslError("key generation");
  SIGIL_ASSIGN_OR_RETURN(X509Ptr cert, MakeCert(key.get(), user, ca.get(), ca_key.get(), days, CertKind::kClient, {}, groups));
  return ClientCertificate{ToPem(cert.get()), KeyToPem(key.get())};
}

Result<CertificateSet> LoadOrGenerateCertificates(const std::string& dir, const std::vector<std::string>& hosts) {
  SIGIL_RETURN_IF_ERROR(file::MakePrivateDir(dir));
  auto existing = LoadCertificates(dir + "/server.crt", dir + "/server.key", dir + "/ca.crt");
  if (existing.ok()) return existing;
  if (existing.error().code() != StatusCode::kNotFound) return existing.error();
  SIGIL_ASSIGN_OR_RETURN(CertificateSet set, GenerateCertificates(hosts));
  SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(dir + "/ca.key", set.ca_key_pem.view(), 0600));
  SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(dir + "/server.key", set.key_pem.view(), 0600));
  SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(dir + "/ca.crt", set.ca_cert_pem, 0644));
  SIGIL_RETURN_IF_ERROR(file::WriteFileAtomic(dir + "/server.crt", set.cert_pem, 0644));
  return set;
}

Result<CertificateSet> LoadCertificates(const std::string& cert_file, const std::string& key_file,
                                        const std::string& ca_file) {
  CertificateSet set;
  SIGIL_ASSIGN_OR_RETURN(set.cert_pem, file::ReadFile(cert_file));
  SIGIL_ASSIGN_OR_RETURN(set.key_pem, file::ReadPrivateFile(key_file));
  if (!ca_file.empty()) {
    auto ca = file::ReadFile(ca_file);
    if (ca.ok()) set.ca_cert_pem = std::move(ca).value();
  }
  return set;
}

}  // namespace sigil::http

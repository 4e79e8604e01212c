// api/http/tls.h: server certificates. When no certificate is configured, sigil makes its own:
// an ECDSA P-256 CA (10 years) and a server certificate it signs (1 year) for 127.0.0.1, ::1,
// localhost and any extra names configured. Clients trust the CA (kubeconfig
// certificate-authority-data, VAULT_CACERT). Thread safety: pure functions.
#pragma once

#include <string>
#include <vector>

#include "sigil/base/result.h"
#include "sigil/base/secret_bytes.h"

namespace sigil::http {

struct CertificateSet {
  std::string ca_cert_pem;
  std::string cert_pem;    // the server certificate, then the CA (a chain)
  SecretBytes key_pem;     // the server's private key
  SecretBytes ca_key_pem;  // kept so the server certificate can be renewed; empty if external
};

// A new CA and a server certificate signed by it. `hosts`: extra DNS names or IP addresses.
Result<CertificateSet> GenerateCertificates(const std::vector<std::string>& hosts);

struct ClientCertificate {
  std::string cert_pem;
  SecretBytes key_pem;
};
// A client certificate (CN = user, O = groups; extendedKeyUsage clientAuth) signed by the CA of
// `set`, which must hold the CA key. kFailedPrecondition if it does not.
Result<ClientCertificate> IssueClientCertificate(const CertificateSet& set, const std::string& user,
                                                 const std::vector<std::string>& groups, long days);

// Loads certificates from `dir` (ca.crt, ca.key, server.crt, server.key), generating and
// writing them (keys 0600) on first use.
Result<CertificateSet> LoadOrGenerateCertificates(const std::string& dir, const std::vector<std::string>& hosts);

// Loads a configured certificate chain and key (the key file must be private).
Result<CertificateSet> LoadCertificates(const std::string& cert_file, const std::string& key_file,
                                        const std::string& ca_file);

}  // namespace sigil::http

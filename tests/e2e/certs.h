// Test PKI: a CA and leaf certificates made with the `openssl` CLI in a
// directory the caller owns (a TempDir), at test time. Keys are EC P-256, so
// a CA and a handful of leaves take well under a second.
#pragma once

#include <string>
#include <vector>

namespace whistle::testing {

struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (PKCS#8, unencrypted)
};

class TestCa {
 public:
  // Creates a self-signed CA "<name>" in `dir` (files <name>-ca.crt / .key).
  // ok() is false when openssl failed; error() has its output.
  TestCa(std::string dir, std::string name);

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  // The CA certificate (what --tls-ca-file names).
  const std::string& ca_file() const { return ca_.cert; }

  // Issues a leaf certificate for both TLS server and client use, signed by
  // this CA: CN = `common_name`, SANs DNS:<each of dns_names> and IP:127.0.0.1.
  // Files are <dir>/<file_name>.crt / .key. Returns empty paths (and sets
  // error()) when openssl failed.
  CertFiles Issue(const std::string& file_name, const std::string& common_name,
                  const std::vector<std::string>& dns_names);

 private:
  std::string dir_;
  std::string name_;
  CertFiles ca_;
  std::string error_;
};

// Writes the concatenation of `pem_files` to `out` (a CA bundle); false on error.
bool WriteBundle(const std::string& out, const std::vector<std::string>& pem_files);

// Runs a command (argv[0] searched in PATH), returns (exit code, stdout+stderr).
std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv);

// Whole file as text ("" when unreadable).
std::string ReadText(const std::string& path);

}  // namespace whistle::testing

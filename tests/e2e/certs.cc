#include "tests/e2e/certs.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <tuple>

namespace whistle::testing {

std::pair<int, std::string> RunCommand(const std::vector<std::string>& argv) {
  int fds[2];
  if (pipe(fds) != 0) return {-1, "pipe failed"};
  // Built before fork: the child of a threaded process may only make async-signal-safe calls.
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    close(fds[1]);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool WriteBundle(const std::string& out, const std::vector<std::string>& pem_files) {
  std::ofstream file(out);
  for (const auto& f : pem_files) {
    std::string pem = ReadText(f);
    if (pem.empty()) return false;
    file << pem;
    if (pem.back() != '\n') file << '\n';
  }
  return static_cast<bool>(file);
}

namespace {

bool WriteText(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

TestCa::TestCa(std::string dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
  ca_.cert = dir_ + "/" + name_ + "-ca.crt";
  ca_.key = dir_ + "/" + name_ + "-ca.key";
  const std::string config = dir_ + "/" + name_ + "-ca.cnf";
  // Our own config: OpenSSL's default one may add extensions twice or be missing.
  WriteText(config,
            "[req]\n"
            "distinguished_name = dn\n"
            "prompt = no\n"
            "[dn]\n"
            "CN = " +
                name_ +
                "\n"
                "[ca]\n"
                "basicConstraints = critical, CA:TRUE\n"
                "keyUsage = critical, keyCertSign, cRLSign\n"
                "subjectKeyIdentifier = hash\n");
  auto [code, out] =
      RunCommand({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-config", config,
                  "-extensions", "ca", "-keyout", ca_.key, "-out", ca_.cert});
  if (code != 0) error_ = "openssl req (CA " + name_ + "): " + out;
}

CertFiles TestCa::Issue(const std::string& file_name, const std::string& common_name,
                        const std::vector<std::string>& dns_names) {
  if (!ok()) return {};
  CertFiles out{dir_ + "/" + file_name + ".crt", dir_ + "/" + file_name + ".key"};
  const std::string csr = dir_ + "/" + file_name + ".csr";
  const std::string req_config = dir_ + "/" + file_name + "-req.cnf";
  const std::string ext = dir_ + "/" + file_name + "-ext.cnf";
  std::string san;
  for (const auto& d : dns_names) san += "DNS:" + d + ",";
  san += "IP:127.0.0.1";
  WriteText(req_config,
            "[req]\n"
            "distinguished_name = dn\n"
            "prompt = no\n"
            "[dn]\n"
            "CN = " +
                common_name + "\n");
  WriteText(ext,
            "basicConstraints = CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth, clientAuth\n"
            "subjectAltName = " +
                san + "\n");
  auto [code, text] = RunCommand({"openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1", "-nodes", "-config", req_config,
                                  "-keyout", out.key, "-out", csr});
  if (code == 0) {
    std::tie(code, text) =
        RunCommand({"openssl", "x509", "-req", "-in", csr, "-CA", ca_.cert, "-CAkey", ca_.key,
                    "-CAcreateserial", "-days", "2", "-extfile", ext, "-out", out.cert});
  }
  if (code != 0) {
    error_ = "openssl (leaf " + file_name + " from CA " + name_ + "): " + text;
    return {};
  }
  return out;
}

}  // namespace whistle::testing

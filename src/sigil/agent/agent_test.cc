// agent/: the configuration's checks, the kubelet-style atomic layout, and the choice of files
// from a Secret. The agent's network side is tested against a real server in
// tests/integration/test_agent.py.
#include "sigil/agent/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "sigil/agent/atomic_writer.h"
#include "sigil/agent/config.h"
#include "sigil/testing/status_matchers.h"

namespace sigil::agent {
namespace {

using ::sigil::testing::StatusIs;
using ::sigil::testing::TempDir;
namespace fs = std::filesystem;

constexpr const char* kMinimal = "server: https://127.0.0.1:8443\nauth: {token_file: t}\n";

Result<Config> Parse(const std::string& extra) {
  return ParseConfig(std::string(kMinimal) + extra, "/etc/agent");
}

std::string Message(const Result<Config>& r) { return r.ok() ? "" : r.error().message(); }

TEST(ConfigTest, ParsesASourceWithItsDefaultsAndResolvesRelativePaths) {
  SIGIL_ASSERT_OK_AND_ASSIGN(Config c, Parse("secrets:\n- {name: db, directory: out/db/}\n"));
  ASSERT_EQ(c.secrets.size(), 1u);
  EXPECT_EQ(c.secrets[0].namespace_, "default");
  EXPECT_EQ(c.secrets[0].directory, "/etc/agent/out/db");
  EXPECT_EQ(c.secrets[0].mode, 0644);
  EXPECT_FALSE(c.secrets[0].remove_on_delete);
  EXPECT_EQ(c.auth.token_file, "/etc/agent/t");
  EXPECT_EQ(c.watch_timeout, std::chrono::seconds(300));
}

TEST(ConfigTest, ItemsModesAndOwnership) {
  SIGIL_ASSERT_OK_AND_ASSIGN(
      Config c,
      Parse("secrets:\n- namespace: team-a\n  name: db\n  directory: /run/db\n  mode: 0440\n"
            "  owner: 1000\n  group: 2000\n  on_delete: remove\n  optional: true\n"
            "  items: [{key: password, path: conf/pw, mode: 0o400}, {key: user}]\n"));
  const SecretSource& s = c.secrets[0];
  EXPECT_EQ(s.mode, 0440);
  EXPECT_EQ(s.owner, 1000u);
  EXPECT_EQ(s.group, 2000u);
  EXPECT_TRUE(s.remove_on_delete);
  EXPECT_TRUE(s.optional);
  ASSERT_EQ(s.items.size(), 2u);
  EXPECT_EQ(s.items[0].path, "conf/pw");
  EXPECT_EQ(s.items[0].mode, 0400);
  EXPECT_EQ(s.items[1].path, "user");
  EXPECT_FALSE(s.items[1].mode.has_value());
}

TEST(ConfigTest, MistakesAreReportedWithTheFieldsPath) {
  struct Case {
    std::string yaml, message;
  };
  std::vector<Case> cases = {
      {"secrets:\n- {name: db, directory: d, on_delet: keep}\n",
       "secrets[0]: unknown field \"on_delet\""},
      {"secrets:\n- {name: db}\n", "secrets[0]: directory is required"},
      {"secrets:\n- {name: Db, directory: d}\n", "secrets[0].name: must consist of lower case"},
      {"secrets:\n- {name: db, directory: d, mode: 0999}\n",
       "secrets[0].mode: a file mode must be from 0 to 0777"},
      {"secrets:\n- {name: db, directory: d, mode: 01777}\n", "secrets[0].mode"},
      {"secrets:\n- {name: db, directory: d, items: [{key: a, path: ../x}]}\n",
       "secrets[0].items[0].path: must not start with '..'"},
      {"secrets:\n- {name: db, directory: d, items: [{key: a, path: x/../../y}]}\n",
       "secrets[0].items[0].path: must not contain '..'"},
      {"secrets:\n- {name: db, directory: d, items: [{key: a, path: /etc/passwd}]}\n",
       "must be a relative path"},
      {"secrets:\n- {name: db, directory: d, items: [{key: a, path: x}, {key: b, path: x}]}\n",
       "\"x\" is given twice"},
      {"secrets:\n- {name: db, directory: d, items: [{key: a, path: x}, {key: b, path: x/y}]}\n",
       "\"x\" is both a file and a directory"},
      {"secrets:\n- {name: db, directory: d}\n- {name: other, directory: d}\n",
       "secrets[1].directory: \"/etc/agent/d\" is used by another source"},
      {"secrets:\n- {name: db, directory: d, on_delete: purge}\n", "must be keep or remove"},
      {"secrets: []\n", "secrets: a non-empty list is required"},
      {"backoff: {min_milliseconds: 5000, max_milliseconds: 100}\nsecrets:\n- {name: db, "
       "directory: d}\n",
       "max_milliseconds must not be less"},
      {"secrets:\n- {name: db, directory: d\n", "not valid YAML"},
  };
  for (const Case& c : cases) {
    auto r = Parse(c.yaml);
    EXPECT_THAT(r, StatusIs(StatusCode::kInvalidArgument)) << c.yaml;
    EXPECT_NE(Message(r).find(c.message), std::string::npos) << c.yaml << " gave: " << Message(r);
  }
  EXPECT_NE(Message(ParseConfig("secrets:\n- {name: db, directory: d}\n", "/"))
                .find("give either server or kubeconfig"),
            std::string::npos);
  EXPECT_NE(
      Message(ParseConfig(
                  "server: http://x\nauth: {token_file: t}\nsecrets:\n- {name: db, directory: d}\n",
                  "/"))
          .find("https://"),
      std::string::npos);
  EXPECT_NE(Message(ParseConfig("server: https://x\nsecrets:\n- {name: db, directory: d}\n", "/"))
                .find("auth: give token_file"),
            std::string::npos);
}

TEST(ConfigTest, CredentialsAndAVaultLogin) {
  SIGIL_ASSERT_OK_AND_ASSIGN(
      Config c,
      ParseConfig(std::string(kMinimal) +
                      "vault: {login: {role: app}}\n"
                      "credentials:\n- {path: /v1/database/creds/ro, directory: db, mode: 0400}\n"
                      "env:\n- {name: DB_USER, credential: database/creds/ro, key: username}\n"
                      "- {name: OTHER, credential: database/creds/other, key: username}\n",
                  "/etc/agent"));
  ASSERT_TRUE(c.vault_login.has_value());
  EXPECT_EQ(c.vault_login->mount, "kubernetes");
  ASSERT_EQ(c.credentials.size(), 2u);  // the one env names is added
  EXPECT_EQ(c.credentials[0].path, "database/creds/ro");
  EXPECT_EQ(c.credentials[0].directory, "/etc/agent/db");
  EXPECT_EQ(c.credentials[0].mode, 0400);
  EXPECT_EQ(c.credentials[1].path, "database/creds/other");
  EXPECT_TRUE(c.credentials[1].directory.empty());
}

TEST(ConfigTest, ModesAsYamlWritersGiveThem) {
  EXPECT_EQ(*ParseMode("0644"), 0644);
  EXPECT_EQ(*ParseMode("0o600"), 0600);
  EXPECT_EQ(*ParseMode("420"), 0644);
  EXPECT_EQ(*ParseMode("0"), 0);
  EXPECT_FALSE(ParseMode("").ok());
  EXPECT_FALSE(ParseMode("0x1ff").ok());
  EXPECT_FALSE(ParseMode("512").ok());
  EXPECT_FALSE(ParseMode("-1").ok());
}

TEST(ConfigTest, EnvAndExecForRun) {
  SIGIL_ASSERT_OK_AND_ASSIGN(
      Config c, ParseConfig(std::string(kMinimal) +
                                "env:\n- {name: DB_PASSWORD, secret: db, key: password}\n"
                                "- {secret: api, namespace: team-a, prefix: API_, optional: true}\n"
                                "exec: {on_change: signal, signal: USR1, stop_signal: SIGINT, "
                                "stop_timeout_seconds: 3}\n",
                            "/"));
  EXPECT_TRUE(c.secrets.empty());  // env alone is enough
  ASSERT_EQ(c.env.size(), 2u);
  EXPECT_EQ(c.env[0].name, "DB_PASSWORD");
  EXPECT_EQ(c.env[0].namespace_, "default");
  EXPECT_EQ(c.env[1].prefix, "API_");
  EXPECT_TRUE(c.env[1].optional);
  EXPECT_EQ(c.exec.on_change, Exec::OnChange::kSignal);
  EXPECT_EQ(c.exec.signal, SIGUSR1);
  EXPECT_EQ(c.exec.stop_signal, SIGINT);
  EXPECT_EQ(c.exec.stop_timeout, std::chrono::seconds(3));
  struct Case {
    std::string yaml, message;
  };
  std::vector<Case> cases = {
      {"env:\n- {name: 1X, secret: db, key: k}\n", "env[0].name: must be a variable name"},
      {"env:\n- {name: X, secret: db}\n", "env[0]: key is required with name"},
      {"env:\n- {secret: db, key: k}\n", "env[0]: name is required with key"},
      {"env:\n- {name: X, secret: db, key: k, prefix: P}\n", "prefix goes without name"},
      {"env:\n- {name: X, secret: db, key: a}\n- {name: X, secret: db, key: b}\n",
       "env[1].name: \"X\" is given twice"},
      {"env:\n- {name: X, key: a}\n", "env[0]: give secret or credential"},
      {"env:\n- {name: X, key: a, secret: s, credential: database/creds/r}\n",
       "give secret or credential"},
      {"env:\n- {name: X, key: a, credential: ../sys/seal}\n",
       "env[0].credential: must be a Vault path"},
      {"credentials:\n- {path: database/creds/r, directory: d}\n- {path: database/creds/r}\n",
       "credentials[1].path: \"database/creds/r\" is given twice"},
      {"vault: {login: {method: approle, role: r}}\nenv:\n- {secret: db}\n",
       "vault.login.method: only kubernetes"},
      {"credentials:\n- {directory: d}\n", "credentials[0]: path is required"},
      {"exec: {on_change: reload}\nenv:\n- {secret: db}\n",
       "exec.on_change: must be restart, signal or none"},
      {"exec: {signal: SIGSEGV}\nenv:\n- {secret: db}\n", "exec.signal: must be one of"},
  };
  for (const Case& k : cases) {
    auto r = ParseConfig(std::string(kMinimal) + k.yaml, "/");
    EXPECT_NE(Message(r).find(k.message), std::string::npos) << k.yaml << " gave: " << Message(r);
  }
  EXPECT_EQ(*ParseSignal("SIGHUP"), SIGHUP);
  EXPECT_EQ(*ParseSignal("TERM"), SIGTERM);
  EXPECT_EQ(*ParseSignal("10"), SIGUSR1);
  EXPECT_FALSE(ParseSignal("11").ok());
  EXPECT_TRUE(IsEnvName("_A1"));
  EXPECT_FALSE(IsEnvName("a-b"));
  EXPECT_FALSE(IsEnvName(""));
}

// ---- the layout -------------------------------------------------------------------------

std::vector<FileData> Files(std::initializer_list<std::tuple<std::string, std::string, int>> in) {
  std::vector<FileData> out;
  for (const auto& [path, data, mode] : in) out.push_back(FileData{path, SecretBytes(data), mode});
  return out;
}

std::string Read(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

std::string Link(const std::string& path) { return fs::read_symlink(path).string(); }

std::vector<std::string> Entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(AtomicWriterTest, LaysOutFilesAsAKubeletSecretVolume) {
  TempDir tmp;
  std::string dir = tmp.Sub("vol/nested");  // created with its parents
  SIGIL_ASSERT_OK_AND_ASSIGN(
      bool wrote,
      WriteAtomically(dir, Files({{"password", "s3cret", 0400}, {"conf/user", "app", 0644}})));
  EXPECT_TRUE(wrote);
  auto names = Entries(dir);
  ASSERT_EQ(names.size(), 4u);  // ..<timestamp>, ..data, conf, password
  std::string version = names[0];
  EXPECT_TRUE(version.starts_with("..20")) << version;
  EXPECT_EQ(names[1], "..data");
  EXPECT_EQ(Link(dir + "/..data"), version);
  EXPECT_EQ(Link(dir + "/password"), "..data/password");
  EXPECT_EQ(Link(dir + "/conf"), "..data/conf");
  EXPECT_EQ(Read(dir + "/password"), "s3cret");
  EXPECT_EQ(Read(dir + "/conf/user"), "app");
  struct stat st;
  ASSERT_EQ(::stat((dir + "/password").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0400u);
  ASSERT_EQ(::stat((dir + "/" + version).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0755u);
}

TEST(AtomicWriterTest, AnUnchangedSetIsNotWrittenAgain) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}})));
  std::string before = Link(tmp.Sub("..data"));
  SIGIL_ASSERT_OK_AND_ASSIGN(bool wrote, WriteAtomically(tmp.path(), Files({{"a", "1", 0644}})));
  EXPECT_FALSE(wrote);
  EXPECT_EQ(Link(tmp.Sub("..data")), before);
  // A different mode is a change, as is a different value of the same length.
  SIGIL_ASSERT_OK_AND_ASSIGN(wrote, WriteAtomically(tmp.path(), Files({{"a", "1", 0600}})));
  EXPECT_TRUE(wrote);
  SIGIL_ASSERT_OK_AND_ASSIGN(wrote, WriteAtomically(tmp.path(), Files({{"a", "2", 0600}})));
  EXPECT_TRUE(wrote);
  EXPECT_EQ(Read(tmp.Sub("a")), "2");
}

TEST(AtomicWriterTest, ANewVersionReplacesTheOldAndRemovesWhatIsGone) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}, {"b", "1", 0644}})));
  std::string old_version = Link(tmp.Sub("..data"));
  std::ofstream(tmp.Sub("unrelated")) << "kept";
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "2", 0644}, {"c", "2", 0644}})));
  EXPECT_EQ(Read(tmp.Sub("a")), "2");
  EXPECT_EQ(Read(tmp.Sub("c")), "2");
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp.Sub("b"))));
  EXPECT_FALSE(fs::exists(tmp.Sub(old_version)));
  EXPECT_EQ(Read(tmp.Sub("unrelated")), "kept");
  auto names = Entries(tmp.path());
  EXPECT_EQ(names.size(), 5u);  // one version, ..data, a, c, unrelated
}

TEST(AtomicWriterTest, ThePreviousVersionCanBeKeptForAMoment) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}})));
  std::string first = Link(tmp.Sub("..data"));
  SIGIL_ASSERT_OK(
      WriteAtomically(tmp.path(), Files({{"a", "2", 0644}}), {}, /*keep_previous=*/true));
  EXPECT_EQ(Read(tmp.Sub(first + "/a")), "1");  // a reader that resolved ..data before the swap
  SIGIL_ASSERT_OK(
      WriteAtomically(tmp.path(), Files({{"a", "3", 0644}}), {}, /*keep_previous=*/true));
  EXPECT_FALSE(fs::exists(tmp.Sub(first)));  // only the one just replaced is kept
  SIGIL_ASSERT_OK(RemoveOldVersions(tmp.path()));
  EXPECT_EQ(Entries(tmp.path()).size(), 3u);  // the current version, ..data, a
  EXPECT_EQ(Read(tmp.Sub("a")), "3");
}

TEST(AtomicWriterTest, LeftoversOfAnInterruptedWriteAreRemoved) {
  TempDir tmp;
  fs::create_directory(tmp.Sub("..2020_01_01_00_00_00.abcdef"));
  std::ofstream(tmp.Sub("..2020_01_01_00_00_00.abcdef/a")) << "half";
  fs::create_symlink("nowhere", tmp.Sub("..data_tmp"));
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}})));
  EXPECT_FALSE(fs::exists(tmp.Sub("..2020_01_01_00_00_00.abcdef")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp.Sub("..data_tmp"))));
  EXPECT_EQ(Read(tmp.Sub("a")), "1");
}

TEST(AtomicWriterTest, AnUnchangedSetStillRepairsLinksAndLeftovers) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}, {"b", "2", 0644}})));
  fs::remove(tmp.Sub("a"));
  fs::create_directory(tmp.Sub("..2020_01_01_00_00_00.abcdef"));
  SIGIL_ASSERT_OK_AND_ASSIGN(
      bool wrote, WriteAtomically(tmp.path(), Files({{"a", "1", 0644}, {"b", "2", 0644}})));
  EXPECT_FALSE(wrote);
  EXPECT_EQ(Read(tmp.Sub("a")), "1");
  EXPECT_FALSE(fs::exists(tmp.Sub("..2020_01_01_00_00_00.abcdef")));
}

TEST(AtomicWriterTest, DirectoriesAre0755WhateverTheUmask) {
  TempDir tmp;
  mode_t old = ::umask(077);
  auto r = WriteAtomically(tmp.Sub("new/dir"), Files({{"sub/a", "1", 0644}}));
  ::umask(old);
  SIGIL_ASSERT_OK(r);
  for (const std::string& d : {tmp.Sub("new"), tmp.Sub("new/dir"), tmp.Sub("new/dir/..data/sub")}) {
    struct stat st;
    ASSERT_EQ(::stat(d.c_str(), &st), 0) << d;
    EXPECT_EQ(st.st_mode & 07777, 0755u) << d;
  }
}

TEST(AtomicWriterTest, NeverReplacesAFileItDidNotMake) {
  TempDir tmp;
  std::ofstream(tmp.Sub("password")) << "mine";
  EXPECT_THAT(WriteAtomically(tmp.path(), Files({{"password", "x", 0644}})),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_EQ(Read(tmp.Sub("password")), "mine");
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp.Sub("..data"))));
  EXPECT_EQ(Entries(tmp.path()).size(), 1u);  // no version directory left behind
  // Nor a symlink it did not make, nor a path that would leave the directory.
  fs::create_symlink("/etc/passwd", tmp.Sub("other"));
  EXPECT_THAT(WriteAtomically(tmp.path(), Files({{"other", "x", 0644}})),
              StatusIs(StatusCode::kFailedPrecondition));
  EXPECT_THAT(WriteAtomically(tmp.path(), Files({{"../escape", "x", 0644}})),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(WriteAtomically(tmp.path(), Files({{"..data", "x", 0644}})),
              StatusIs(StatusCode::kInvalidArgument));
}

TEST(AtomicWriterTest, RemoveAllTakesOnlyWhatItMade) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}, {"d/b", "2", 0644}})));
  std::ofstream(tmp.Sub("unrelated")) << "kept";
  SIGIL_ASSERT_OK(RemoveAll(tmp.path()));
  EXPECT_EQ(Entries(tmp.path()), std::vector<std::string>{"unrelated"});
  SIGIL_EXPECT_OK(RemoveAll(tmp.Sub("missing")));
}

TEST(AtomicWriterTest, AnEmptySetLeavesAnEmptyVersion) {
  TempDir tmp;
  SIGIL_ASSERT_OK(WriteAtomically(tmp.path(), Files({{"a", "1", 0644}})));
  SIGIL_ASSERT_OK_AND_ASSIGN(bool wrote, WriteAtomically(tmp.path(), {}));
  EXPECT_TRUE(wrote);
  EXPECT_FALSE(fs::exists(fs::symlink_status(tmp.Sub("a"))));
  EXPECT_TRUE(fs::is_directory(tmp.Sub("..data")));
}

// ---- choosing files from a Secret ----------------------------------------------------------

TEST(SelectFilesTest, EveryKeyOrTheChosenItems) {
  nlohmann::json secret = {{"metadata", {{"name", "db"}}},
                           {"data", {{"password", "czNjcmV0"}, {"user", "YXBw"}}}};
  SecretSource all;
  all.namespace_ = "default";
  all.name = "db";
  all.mode = 0440;
  SIGIL_ASSERT_OK_AND_ASSIGN(auto files, SelectFiles(all, secret));
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files[0].path, "password");
  EXPECT_EQ(files[0].data.view(), "s3cret");
  EXPECT_EQ(files[0].mode, 0440);

  SecretSource some = all;
  some.items = {Item{"user", "conf/user", 0400}};
  SIGIL_ASSERT_OK_AND_ASSIGN(files, SelectFiles(some, secret));
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].path, "conf/user");
  EXPECT_EQ(files[0].data.view(), "app");
  EXPECT_EQ(files[0].mode, 0400);

  some.items = {Item{"missing", "m", std::nullopt}};
  EXPECT_THAT(SelectFiles(some, secret), StatusIs(StatusCode::kNotFound));
  SIGIL_ASSERT_OK_AND_ASSIGN(files,
                             SelectFiles(all, nlohmann::json{{"metadata", {{"name", "db"}}}}));
  EXPECT_TRUE(files.empty());  // a Secret without data is an empty directory
  EXPECT_THAT(SelectFiles(all, nlohmann::json{{"data", {{"k", "not base64!"}}}}),
              StatusIs(StatusCode::kInvalidArgument));
  EXPECT_THAT(SelectFiles(all, nlohmann::json{{"data", {{"..data", "YQ=="}}}}),
              StatusIs(StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace sigil::agent

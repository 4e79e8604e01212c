// The PostgreSQL helpers that need no server: Vault's statement templates and splitting,
// connection strings with credentials filled in (escaped for URLs and key=value strings),
// quoting, and redaction. The engine against a real PostgreSQL is tested through the Vault API
// (tests/integration/test_vault_database.py).
#include "sigil/database/postgres.h"

#include <gtest/gtest.h>

#include "sigil/base/encoding.h"

namespace sigil::database {
namespace {

TEST(PostgresTest, TemplatesAreReplacedLiterallyEverywhere) {
  EXPECT_EQ(RenderTemplate("CREATE ROLE \"{{name}}\" PASSWORD '{{password}}' VALID UNTIL '{{expiration}}'; GRANT r TO \"{{name}}\"",
                           {{"name", "v-a"}, {"password", "p"}, {"expiration", "e"}}),
            "CREATE ROLE \"v-a\" PASSWORD 'p' VALID UNTIL 'e'; GRANT r TO \"v-a\"");
  // Only the exact spelling: no spaces inside the braces, unknown names stay.
  EXPECT_EQ(RenderTemplate("{{ name }} {{other}} {{name}}", {{"name", "x"}}), "{{ name }} {{other}} x");
  // A value containing its own template is not expanded again.
  EXPECT_EQ(RenderTemplate("{{name}}{{name}}", {{"name", "{{name}}"}}), "{{name}}{{name}}");
  // One pass: a value holding another variable's template is not expanded (a static role's
  // user name cannot pull the password into a statement).
  EXPECT_EQ(RenderTemplate("ALTER ROLE \"{{name}}\"", {{"name", "x{{password}}y"}, {"password", "P"}}), "ALTER ROLE \"x{{password}}y\"");
  EXPECT_EQ(RenderTemplate("{{ {{name}} }}", {{"name", "n"}}), "{{ n }}");
}

TEST(PostgresTest, StatementsSplitAsVaultSplitsThem) {
  EXPECT_EQ(SplitStatements(" CREATE ROLE a;  GRANT SELECT ON t TO a ;; "),
            (std::vector<std::string>{"CREATE ROLE a", "GRANT SELECT ON t TO a"}));
  // A JSON array of statements, and base64 of either.
  EXPECT_EQ(SplitStatements(R"(["CREATE ROLE a", " GRANT b TO a "])"), (std::vector<std::string>{"CREATE ROLE a", "GRANT b TO a"}));
  EXPECT_EQ(SplitStatements(Base64Encode("CREATE ROLE a; DROP ROLE b")), (std::vector<std::string>{"CREATE ROLE a", "DROP ROLE b"}));
  // Blocks run whole where Vault lets them (creation, revocation), are split elsewhere.
  std::string block = "DO $$ BEGIN CREATE ROLE a; END $$;";
  EXPECT_EQ(SplitStatements(block), (std::vector<std::string>{block}));
  EXPECT_EQ(SplitStatements("CREATE FUNCTION f() RETURNS int AS 'select 1; ' LANGUAGE sql; END", true).size(), 1u);
  EXPECT_EQ(SplitStatements(block, false).size(), 2u);
  // END inside a quoted string or as part of a word is not a block.
  EXPECT_EQ(SplitStatements("CREATE ROLE \"{{name}}\" PASSWORD 'END'; GRANT x TO \"{{name}}\"").size(), 2u);
  EXPECT_EQ(SplitStatements("ALTER ROLE a RENAME TO weekend; SELECT 1").size(), 2u);
  EXPECT_TRUE(SplitStatements("  ").empty());
}

TEST(PostgresTest, CredentialsAreEscapedIntoTheConnectionString) {
  EXPECT_EQ(RenderConnectionString("postgresql://{{username}}:{{password}}@127.0.0.1:5432/db?sslmode=disable", "ad min", "p@ss:w/rd'%")
                .view(),
            "postgresql://ad%20min:p%40ss%3Aw%2Frd%27%25@127.0.0.1:5432/db?sslmode=disable");
  EXPECT_EQ(RenderConnectionString("host=h user={{username}} password={{password}}", "a b", "it's\\x").view(),
            "host=h user='a b' password='it\\'s\\\\x'");
  EXPECT_TRUE(CheckConnectionString("postgres://{{username}}:{{password}}@localhost/db").ok());
  EXPECT_TRUE(CheckConnectionString("host=localhost dbname=x").ok());
  Status bad = CheckConnectionString("host=localhost nonsense_option=1");
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.message().find("nonsense_option"), std::string::npos);
  EXPECT_EQ(CheckConnectionString("").code(), StatusCode::kInvalidArgument);
}

TEST(PostgresTest, QuotingAndRedaction) {
  EXPECT_EQ(QuoteIdentifier("we\"ird"), "\"we\"\"ird\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(Redact("syntax error at or near \"s3cret\" (s3cret)", {"s3cret", ""}), "syntax error at or near \"[redacted]\" ([redacted])");
  // A fragment of a secret that PostgreSQL quotes goes too; quoted names that share nothing stay.
  EXPECT_EQ(Redact("syntax error at or near \"Xy9q\" in role \"v-app\"", {"Xy9q-abcdefgh"}),
            "syntax error at or near \"[redacted]\" in role \"v-app\"");
  EXPECT_EQ(RedactUrl("postgresql://admin:hunter2@db:5432/x"), "postgresql://admin:xxxxx@db:5432/x");
  EXPECT_EQ(RedactUrl("postgresql://{{username}}:{{password}}@db/x"), "postgresql://{{username}}:{{password}}@db/x");
  EXPECT_EQ(RedactUrl("host=db user=admin password=hunter2 dbname=x"), "user='admin' password='xxxxx' dbname='x' host='db'");  // libpq's order
  EXPECT_EQ(RedactUrl("host=db password={{password}}"), "password='{{password}}' host='db'");
  EXPECT_EQ(RedactUrl("postgresql://db/x"), "postgresql://db/x");
  EXPECT_EQ(RedactUrl("host=db"), "host='db'");
}

TEST(PostgresTest, APoolThatCannotConnectSaysSoQuickly) {
  // Port 1 on loopback: nothing listens, the refusal is immediate.
  Pool pool(SecretBytes(std::string_view("postgresql://u:secretpw@127.0.0.1:1/db?sslmode=disable")), Pool::Options{});
  Status st = pool.Ping();
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_EQ(st.message().find("secretpw"), std::string::npos);
}

}  // namespace
}  // namespace sigil::database

#include "sigil/database/cron.h"

namespace sigil::database {
namespace {

std::string NextAfter(std::string_view spec, std::string_view after) {
  auto c = CronSchedule::Parse(spec);
  if (!c.ok()) return "error: " + c.error().message();
  auto n = c->Next(*ParseRfc3339(after));
  return n ? FormatRfc3339(*n) : "never";
}

TEST(CronTest, NextTimesAsCronComputesThem) {
  EXPECT_EQ(NextAfter("* * * * *", "2026-12-07T10:15:30Z"), "2026-12-07T10:16:00Z");
  EXPECT_EQ(NextAfter("0 * * * *", "2026-12-07T10:00:00Z"), "2026-12-07T11:00:00Z");
  EXPECT_EQ(NextAfter("*/15 9-17 * * MON-FRI", "2026-12-05T12:00:00Z"), "2026-12-07T09:00:00Z");  // Saturday -> Monday
  EXPECT_EQ(NextAfter("30 2 1 jan,jul *", "2026-12-07T00:00:00Z"), "2027-01-01T02:30:00Z");
  EXPECT_EQ(NextAfter("0 0 * * 7", "2026-12-07T00:00:00Z"), "2026-12-13T00:00:00Z");  // 7 is Sunday
  EXPECT_EQ(NextAfter("0 0 * * 5-7", "2026-12-07T00:00:00Z"), "2026-12-11T00:00:00Z");
  // Both day fields restricted: either matches (the 13th, or any Friday).
  EXPECT_EQ(NextAfter("0 0 13 * 5", "2026-12-07T00:00:00Z"), "2026-12-11T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00Z");
  EXPECT_EQ(NextAfter("0 0 30 2 *", "2026-03-01T00:00:00Z"), "never");
  EXPECT_EQ(NextAfter("5/20 * * * *", "2026-12-07T10:06:00Z"), "2026-12-07T10:25:00Z");
}

TEST(CronTest, BadSchedulesNameTheField) {
  EXPECT_NE(NextAfter("* * * *", "2026-01-01T00:00:00Z").find("expected 5 fields"), std::string::npos);
  EXPECT_NE(NextAfter("60 * * * *", "2026-01-01T00:00:00Z").find("minute \"60\": out of range 0-59"), std::string::npos);
  EXPECT_NE(NextAfter("* * * FOO *", "2026-01-01T00:00:00Z").find("month"), std::string::npos);
  EXPECT_NE(NextAfter("* 5-2 * * *", "2026-01-01T00:00:00Z").find("backwards"), std::string::npos);
  EXPECT_NE(NextAfter("*/0 * * * *", "2026-01-01T00:00:00Z").find("bad step"), std::string::npos);
  EXPECT_NE(NextAfter("1,,2 * * * *", "2026-01-01T00:00:00Z").find("empty"), std::string::npos);
  EXPECT_NE(NextAfter("@daily", "2026-01-01T00:00:00Z").find("expected 5 fields"), std::string::npos);
}

}  // namespace
}  // namespace sigil::database

#!/usr/bin/env node
// Drives sigil's Vault face through the unchanged npm package node-vault (pinned in
// package.json) and prints what each call returned, as one JSON object on stdout, for
// tests/integration/test_node_vault.py to assert on.
//
//   VAULT_ADDR=https://127.0.0.1:8200 VAULT_TOKEN=<root token> \
//   NODE_EXTRA_CA_CERTS=<ca.crt> node vault_client.js <scenario>
//
// The server's CA must come through NODE_EXTRA_CA_CERTS (read by node at start-up):
// node-vault 0.10.x sends its requests through axios and drops `requestOptions.ca`.
// TLS is always verified here (VAULT_SKIP_VERIFY is ignored).
//
// Each call is recorded as {ok: true, value} or {ok: false, status, message, body}
// (node-vault rejects a non-2xx answer with an error whose message is errors[0], or
// "Status <code>" when errors is empty). Exit status: 0 when the scenario ran to its end
// (whatever the server answered), 2 on bad usage, 1 when the driver itself failed.
'use strict';

const nodeVault = require('node-vault');

const ADDR = process.env.VAULT_ADDR;
const ROOT_TOKEN = process.env.VAULT_TOKEN;
// node-vault falls back to these variables when a client is made without them: a client made
// here without a token must send none, and TLS must stay verified.
delete process.env.VAULT_TOKEN;
delete process.env.VAULT_ADDR;
delete process.env.VAULT_SKIP_VERIFY;

function client(token) {
    return nodeVault({ apiVersion: 'v1', endpoint: ADDR, token });
}

// Runs one node-vault call and records its outcome instead of throwing.
async function call(promise) {
    try {
        return { ok: true, value: await promise };
    } catch (e) {
        const out = { ok: false, message: e.message };
        if (e.response) {
            out.status = e.response.statusCode;
            out.body = e.response.body;
        } else {
            // No HTTP answer at all (TLS, connection refused, a schema check): say so.
            out.status = null;
            out.code = e.code || null;
        }
        return out;
    }
}

const APP_POLICY = 'path "sys/policy/*" {\n  capabilities = ["read"]\n}\n';

const POLICY = `# written by node-vault
path "secret/data/web/*" {
  capabilities = ["read", "list"]
}

path "secret/data/web/admin" {
  capabilities = ["deny"]
}
`;

const scenarios = {
    // sys/health, unauthenticated: the default answer and a custom active code.
    async health() {
        const anon = client(undefined);
        return {
            health: await call(anon.health()),
            custom_code: await call(anon.health({ standbyok: true, activecode: 299 })),
        };
    },

    // sys/policy through addPolicy / getPolicy / policies / removePolicy; LIST on
    // sys/policies/acl with the LIST verb and with GET ?list=1 (noCustomHTTPVerbs).
    async policies() {
        const root = client(ROOT_TOKEN);
        const r = {};
        r.add = await call(root.addPolicy({ name: 'node-web', rules: POLICY }));
        r.get = await call(root.getPolicy({ name: 'node-web' }));
        r.list = await call(root.policies());
        r.list_acl = await call(root.list('sys/policies/acl'));
        const noVerbs = nodeVault({ apiVersion: 'v1', endpoint: ADDR, token: ROOT_TOKEN, noCustomHTTPVerbs: true });
        r.list_acl_get = await call(noVerbs.list('sys/policies/acl'));
        r.bad = await call(root.addPolicy({ name: 'node-broken', rules: 'path "a/*" {\n  capabilities = ["raed"]\n}\n' }));
        r.get_bad = await call(root.getPolicy({ name: 'node-broken' }));
        r.remove = await call(root.removePolicy({ name: 'node-web' }));
        r.get_removed = await call(root.getPolicy({ name: 'node-web' }));
        r.list_after = await call(root.policies());
        r.remove_default = await call(root.removePolicy({ name: 'default' }));
        return r;
    },

    // auth/token/*: create with policies and a TTL, look up, renew, revoke itself; then the
    // token is refused.
    async tokens() {
        const root = client(ROOT_TOKEN);
        const r = {};
        r.add_policy = await call(root.addPolicy({ name: 'node-app', rules: APP_POLICY }));
        r.create = await call(root.tokenCreate({
            policies: ['node-app'], ttl: '1h', display_name: 'node', meta: { team: 'web' },
        }));
        if (!r.create.ok) return r;
        const tok = r.create.value.auth.client_token;
        // tokenCreate is a node-vault "tokenSource": the client switches to the new token.
        r.root_client_switched = root.token === tok;
        const app = client(tok);
        r.lookup_self = await call(app.tokenLookupSelf());
        r.read_allowed = await call(app.getPolicy({ name: 'node-app' }));
        r.write_denied = await call(app.addPolicy({ name: 'node-evil', rules: 'path "*" { capabilities = ["sudo"] }' }));
        r.renew_self = await call(app.tokenRenewSelf());
        r.renew_self_2h = await call(app.tokenRenewSelf({ increment: '2h' }));
        r.client_token_after_renew = app.token === tok;
        r.lookup_after_renew = await call(app.tokenLookupSelf());
        r.revoke_self = await call(app.tokenRevokeSelf());
        r.lookup_after_revoke = await call(app.tokenLookupSelf());
        r.read_after_revoke = await call(app.getPolicy({ name: 'node-app' }));
        r.renew_after_revoke = await call(app.tokenRenewSelf());
        return r;
    },

    // A token holding only "default" has no rights on sys/policy: permission denied, and
    // an unknown path is denied too (the ACL check comes before routing).
    async denied() {
        const root = client(ROOT_TOKEN);
        const r = {};
        r.create = await call(root.tokenCreate({ policies: ['default'], ttl: '10m', display_name: 'nobody' }));
        if (!r.create.ok) return r;
        const nobody = client(r.create.value.auth.client_token);
        r.policies = await call(nobody.policies());
        r.get_policy = await call(nobody.getPolicy({ name: 'default' }));
        r.add_policy = await call(nobody.addPolicy({ name: 'mine', rules: APP_POLICY }));
        r.unknown = await call(nobody.read('no/such/mount'));
        r.lookup_self = await call(nobody.tokenLookupSelf());  // "default" allows this
        r.bogus_token = await call(client('hvs.notarealtoken0000000000000000').policies());
        return r;
    },

    // A Shamir-sealed server from its first start: initialized, init (node-vault keeps the
    // root token), status and unseal share by share (a wrong share first), mounts and a KV
    // version 1 engine, then seal, refused requests, and unseal again with other shares.
    async seal() {
        const anon = client(undefined);
        const r = {};
        r.initialized_before = await call(anon.initialized());
        r.status_before = await call(anon.status());
        r.init = await call(anon.init({ secret_shares: 3, secret_threshold: 2 }));
        if (!r.init.ok) return r;
        const keys = r.init.value.keys;
        const root = client(r.init.value.root_token);
        r.sealed_read = await call(root.policies());
        r.unseal_1 = await call(anon.unseal({ key: keys[0] }));
        r.unseal_wrong = await call(anon.unseal({ key: 'ab'.repeat(33) }));
        r.unseal_2 = await call(anon.unseal({ key: keys[1] }));
        r.unseal_3 = await call(anon.unseal({ key: keys[2] }));
        r.policies = await call(root.policies());
        r.mount = await call(root.mount({ mount_point: 'kv', type: 'kv', options: { version: '1' } }));
        r.mounts = await call(root.mounts());
        r.write = await call(root.write('kv/app', { password: 'node-secret' }));
        r.read = await call(root.read('kv/app'));
        r.seal = await call(root.seal());
        r.status_sealed = await call(anon.status());
        r.read_sealed = await call(root.read('kv/app'));
        r.unseal_again_1 = await call(anon.unseal({ key: keys[2] }));
        r.unseal_again_2 = await call(anon.unseal({ key: keys[0] }));
        r.read_again = await call(root.read('kv/app'));
        return r;
    },

    // The auth methods through node-vault's helpers: userpass and AppRole logins, and a
    // Kubernetes login with the service-account JWT the test signed (KUBE_JWT; the key's
    // certificate in KUBE_PEM). Each login's token is used once.
    async auth() {
        const root = client(ROOT_TOKEN);
        const r = {};
        r.policy = await call(root.addPolicy({ name: 'node-login', rules: APP_POLICY }));
        r.enable_userpass = await call(root.enableAuth({ mount_point: 'userpass', type: 'userpass' }));
        r.enable_approle = await call(root.enableAuth({ mount_point: 'approle', type: 'approle' }));
        r.enable_kubernetes = await call(root.enableAuth({ mount_point: 'kubernetes', type: 'kubernetes' }));
        r.auths = await call(root.auths());
        r.user = await call(root.write('auth/userpass/users/nina', { password: 'pw-nina', policies: 'node-login' }));
        const u = client(undefined);
        r.userpass_login = await call(u.userpassLogin({ username: 'nina', password: 'pw-nina' }));
        r.userpass_use = await call(u.getPolicy({ name: 'node-login' }));
        r.userpass_wrong = await call(client(undefined).userpassLogin({ username: 'nina', password: 'nope' }));
        r.role = await call(root.addApproleRole({ role_name: 'ci', policies: 'node-login', secret_id_ttl: 600 }));
        r.role_id = await call(root.getApproleRoleId({ role_name: 'ci' }));
        r.secret_id = await call(root.getApproleRoleSecret({ role_name: 'ci' }));
        if (r.role_id.ok && r.secret_id.ok) {
            const a = client(undefined);
            r.approle_login = await call(a.approleLogin({
                role_id: r.role_id.value.data.role_id, secret_id: r.secret_id.value.data.secret_id,
            }));
            r.approle_use = await call(a.getPolicy({ name: 'node-login' }));
            r.approle_wrong = await call(client(undefined).approleLogin({
                role_id: r.role_id.value.data.role_id, secret_id: 'not-the-secret-id',
            }));
        }
        r.kube_config = await call(root.write('auth/kubernetes/config', {
            kubernetes_host: 'https://10.0.0.1:443', pem_keys: [process.env.KUBE_PEM],
        }));
        // (node-vault 0.10.10's addKubernetesRole has a schema without properties and throws
        // before sending anything, so the role is written as Vault's docs show.)
        r.kube_role = await call(root.write('auth/kubernetes/role/web', {
            bound_service_account_names: 'builder', bound_service_account_namespaces: 'team-a',
            policies: 'node-login', ttl: '1h',
        }));
        const k = client(undefined);
        // (mount_point given: node-vault renders its kubernetesPath default into the URL only
        // from the call's arguments, so without it the path is auth//login.)
        r.kube_login = await call(k.kubernetesLogin({ mount_point: 'kubernetes', role: 'web', jwt: process.env.KUBE_JWT }));
        r.kube_use = await call(k.getPolicy({ name: 'node-login' }));
        r.kube_wrong = await call(client(undefined).kubernetesLogin({
            mount_point: 'kubernetes', role: 'web', jwt: process.env.KUBE_OTHER_JWT,
        }));
        return r;
    },

    // KV version 2 at the dev server's secret/ mount and transit at transit/, through
    // node-vault's generic calls (read, write, update = PATCH merge-patch, list, delete) and
    // its transit helpers (encryptData, decryptData).
    async kv2_transit() {
        const root = client(ROOT_TOKEN);
        const r = {};
        r.write_1 = await call(root.write('secret/data/node/app', { data: { user: 'app', password: 'one' } }));
        r.write_2 = await call(root.write('secret/data/node/app', { data: { user: 'app', password: 'two' }, options: { cas: 1 } }));
        r.write_cas_stale = await call(root.write('secret/data/node/app', { data: { x: 'y' }, options: { cas: 1 } }));
        r.patch = await call(root.update('secret/data/node/app', { data: { password: 'three', user: null } }));
        r.read = await call(root.read('secret/data/node/app'));
        r.read_v1 = await call(root.read('secret/data/node/app?version=1'));
        r.list = await call(root.list('secret/metadata/node'));
        r.metadata = await call(root.read('secret/metadata/node/app'));
        r.delete_latest = await call(root.delete('secret/data/node/app'));
        r.read_deleted = await call(root.read('secret/data/node/app'));
        r.mount_transit = await call(root.mount({ mount_point: 'transit', type: 'transit' }));
        r.create_key = await call(root.write('transit/keys/node-key', { type: 'chacha20-poly1305' }));
        r.encrypt = await call(root.encryptData({ name: 'node-key', plaintext: Buffer.from('node secret').toString('base64') }));
        if (r.encrypt.ok) {
            r.decrypt = await call(root.decryptData({ name: 'node-key', ciphertext: r.encrypt.value.data.ciphertext }));
        }
        r.decrypt_bad = await call(root.decryptData({ name: 'node-key', ciphertext: 'vault:v1:AAAA' }));
        // The kubernetes/ mount: a Kubernetes Secret written and patched as a KV v2 secret.
        r.k8s_write = await call(root.write('kubernetes/data/default/node-app', { data: { pw: 'js-one' } }));
        r.k8s_patch = await call(root.update('kubernetes/data/default/node-app', { data: { extra: 'e' } }));
        r.k8s_read = await call(root.read('kubernetes/data/default/node-app'));
        r.k8s_list = await call(root.list('kubernetes/metadata/default'));
        return r;
    },

    // Paths nothing serves: 404 to a token that may reach them.
    async unknown() {
        const root = client(ROOT_TOKEN);
        return {
            read: await call(root.read('no/such/mount')),
            write: await call(root.write('no/such/mount', { a: 1 })),
            delete: await call(root.delete('no/such/mount')),
        };
    },
};

async function main() {
    const name = process.argv[2];
    if (!name || !scenarios[name]) {
        process.stderr.write(`usage: node vault_client.js <${Object.keys(scenarios).join('|')}>\n`);
        process.exit(2);
    }
    if (!ADDR) {
        process.stderr.write('VAULT_ADDR is not set (the server URL, https://host:port)\n');
        process.exit(2);
    }
    if (ADDR.startsWith('https:') && !process.env.NODE_EXTRA_CA_CERTS) {
        process.stderr.write('NODE_EXTRA_CA_CERTS is not set (the server CA file; node-vault ignores requestOptions.ca)\n');
        process.exit(2);
    }
    const result = await scenarios[name]();
    process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
    process.stderr.write(`vault_client.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
});

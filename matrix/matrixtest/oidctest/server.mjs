// A real OAuth 2.0 authorization server for mxauth's tests: oidc-provider (pinned in
// package.json / package-lock.json) configured the way a Matrix homeserver's authorization
// server is used, on loopback only. The Go package beside this file starts it; nothing else
// should.
//
// Environment:
//   OIDC_ISSUER       the issuer URL clients see (the Go harness's front on 127.0.0.1)
//   OIDC_PORT         the port to listen on, on 127.0.0.1 (0: any; the port is printed)
//   OIDC_USERS        JSON object: user name -> password
//   OIDC_RS_ID, OIDC_RS_SECRET
//                     the confidential client a homeserver introspects tokens as
//   OIDC_ACCESS_TTL   access token lifetime in seconds (default 300, as MAS)
//   OIDC_DEVICE_INTERVAL
//                     the polling interval (seconds) the device authorization reply names
//   OIDC_REPLAY       "mas" (default) or "strict": what a second redemption of a rotated
//                     refresh token does (see the adapter below)
//   OIDC_NOTIFY_URL   where to POST {"sub", "device_id"} when a session ends (optional): MAS
//                     tells the homeserver to delete the device then, and the harness does
//                     the same with the in-process homeserver
//
// On start it prints one line, "listening 127.0.0.1:<port>", to standard output. It exits when
// its standard input closes (the test process that started it went away) or on SIGTERM.

import crypto from 'node:crypto';
import http from 'node:http';
import querystring from 'node:querystring';

import Provider from 'oidc-provider';

const env = (name, fallback) => process.env[name] ?? fallback;
const issuer = env('OIDC_ISSUER');
if (!issuer) {
  console.error('OIDC_ISSUER is required');
  process.exit(2);
}
const users = JSON.parse(env('OIDC_USERS', '{}'));
const accessTTL = Number(env('OIDC_ACCESS_TTL', '300'));
const deviceInterval = Number(env('OIDC_DEVICE_INTERVAL', '0'));
const replay = env('OIDC_REPLAY', 'mas');
const notifyURL = env('OIDC_NOTIFY_URL', '');
if (!['mas', 'strict'].includes(replay)) {
  console.error(`OIDC_REPLAY must be "mas" or "strict", not ${JSON.stringify(replay)}`);
  process.exit(2);
}

const SCOPE_API = 'urn:matrix:client:api:*';
const DEVICE_SCOPE = /^urn:matrix:client:device:[A-Za-z0-9._~-]{1,255}$/u;
const isMatrixScope = (scope) => scope === SCOPE_API || DEVICE_SCOPE.test(scope);

// ---- storage ----
//
// oidc-provider keeps its state through an adapter. This one is a plain in-memory store (the
// bundled one is an LRU of 1000 entries, which could evict a live token in a long test run),
// plus the rule for a rotated refresh token that is redeemed again.
//
// oidc-provider's own rule (OIDC_REPLAY=strict): a rotated refresh token is marked consumed,
// and redeeming it again is a replay: the token is destroyed, the whole grant is revoked
// (every access and refresh token of the session) and the answer is invalid_grant. A client
// whose refresh response was lost on the way therefore loses its session.
//
// Matrix Authentication Service accepts a rotated refresh token again as long as nothing
// issued by its redemption has been used: the client evidently never received that response.
// The new pair then replaces the unused one. Once the new access token was presented (the
// homeserver introspected it) or the new refresh token was redeemed, the old token is spent,
// and oidc-provider's replay rule above applies to it. OIDC_REPLAY=mas (the default) does this:
// consume() of a refresh token only records the rotation, the pair its redemption issued is
// linked to it when the token endpoint answers, and find() reports the old token consumed
// once that pair has been used.

const store = new Map(); // "Model:id" -> { payload, expiresAt (ms) }
const grants = new Map(); // grantId -> Set of "Model:id"
const byUserCode = new Map(); // userCode -> id
const byUid = new Map(); // session uid -> id

// grantOwners: grant id -> { sub, scope } of the grant as last saved, kept after it is
// revoked, to name the devices whose session ended
const grantOwners = new Map();
// rotations: old refresh token id -> { rt, at } the ids its latest redemption issued (mas mode)
const rotations = new Map();
// access token ids and refresh token ids that have been used since they were issued
const used = new Set();

const key = (model, id) => `${model}:${id}`;

function live(k) {
  const e = store.get(k);
  if (!e) return undefined;
  if (e.expiresAt !== undefined && e.expiresAt <= Date.now()) {
    drop(k);
    return undefined;
  }
  return e.payload;
}

function drop(k) {
  const e = store.get(k);
  if (!e) return;
  store.delete(k);
  const { grantId, userCode, uid } = e.payload;
  if (grantId) grants.get(grantId)?.delete(k);
  if (userCode && byUserCode.get(userCode) === k) byUserCode.delete(userCode);
  if (uid && byUid.get(uid) === k) byUid.delete(uid);
  const id = k.slice(k.indexOf(':') + 1);
  rotations.delete(id);
  used.delete(id);
}

// spent says whether a rotated refresh token's successor pair has been used.
function spent(id) {
  const r = rotations.get(id);
  return r !== undefined && (used.has(r.at) || used.has(r.rt));
}

class Adapter {
  constructor(model) {
    this.model = model;
  }

  async upsert(id, payload, expiresIn) {
    const k = key(this.model, id);
    if (this.model === 'Grant') grantOwners.set(id, { sub: payload.accountId, scope: payload.openid?.scope ?? '' });
    drop(k);
    store.set(k, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : undefined });
    if (payload.grantId) {
      if (!grants.has(payload.grantId)) grants.set(payload.grantId, new Set());
      grants.get(payload.grantId).add(k);
    }
    if (payload.userCode) byUserCode.set(payload.userCode, k);
    if (this.model === 'Session' && payload.uid) byUid.set(payload.uid, k);
  }

  async find(id) {
    const payload = live(key(this.model, id));
    if (!payload) return undefined;
    if (this.model === 'RefreshToken' && replay === 'mas' && spent(id)) {
      return { ...payload, consumed: payload.consumed ?? Math.floor(Date.now() / 1000) };
    }
    return payload;
  }

  async findByUserCode(userCode) {
    const k = byUserCode.get(userCode);
    return k ? live(k) : undefined;
  }

  async findByUid(uid) {
    const k = byUid.get(uid);
    return k ? live(k) : undefined;
  }

  async consume(id) {
    const payload = live(key(this.model, id));
    if (!payload) return;
    if (this.model === 'RefreshToken') {
      used.add(id); // its predecessor, if any, is spent now
      if (replay === 'mas') return; // the rotation is recorded when the token endpoint answers
    }
    payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    drop(key(this.model, id));
  }

  async revokeByGrantId(grantId) {
    for (const k of [...(grants.get(grantId) ?? [])]) {
      if (k.startsWith(`${this.model}:`)) drop(k);
    }
  }
}

// ---- the provider ----

const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), use: 'sig', alg: 'RS256', kid: 'k1' };

const provider = new Provider(issuer, {
  adapter: Adapter,
  jwks: { keys: [signingKey] },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  clients: [{
    // The homeserver: a resource server that only introspects.
    client_id: env('OIDC_RS_ID', 'homeserver'),
    client_secret: env('OIDC_RS_SECRET', crypto.randomBytes(24).toString('base64url')),
    grant_types: [],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  features: {
    devInteractions: { enabled: false },
    registration: { enabled: true }, // open dynamic registration (RFC 7591), as MAS offers
    deviceFlow: {
      enabled: true,
      charset: 'base-20',
      mask: '****-****',
      userCodeInputSource,
      userCodeConfirmSource,
      successSource,
    },
    revocation: { enabled: true },
    introspection: {
      enabled: true,
      // Only the homeserver's confidential client may introspect, and it may introspect any
      // token; a public client learns nothing through it.
      allowedPolicy: async (_ctx, client) => client.clientAuthMethod !== 'none',
    },
    userinfo: { enabled: false },
    rpInitiatedLogout: { enabled: false },
  },
  // The account page (below), as MAS names its own in its metadata.
  discovery: {
    account_management_uri: `${issuer}/account`,
    account_management_actions_supported: ['org.matrix.devices_list', 'org.matrix.device_delete'],
  },
  // No openid: these clients ask for the Matrix scopes only. The device scope is accepted
  // for any device ID (see the requestParamOIDCScopes patch below).
  scopes: [SCOPE_API],
  responseTypes: ['code'],
  pkce: { required: () => true }, // S256 only (its default method set)
  // Refresh tokens for every client registered for the refresh_token grant, not only with
  // offline_access (which Matrix clients do not ask for), and not ending with the browser
  // session that approved them.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  expiresWithSession: async () => false,
  // Revoking either token of a session ends the whole grant, also when it is the access
  // token (oidc-provider's default keeps the grant then), so the session's device ends too.
  revokeGrantPolicy: () => true,
  rotateRefreshToken: true,
  ttl: {
    AccessToken: accessTTL,
    AuthorizationCode: 600,
    DeviceCode: 1200,
    Grant: 14 * 24 * 3600,
    IdToken: 3600,
    Interaction: 3600,
    RefreshToken: 14 * 24 * 3600,
    Session: 24 * 3600,
    ClientCredentials: 600,
    BackchannelAuthenticationRequest: 600,
    PreAuthorizedCode: 600,
  },
  // RFC 7591 lets response_types default to "code", which needs redirect URIs. A native
  // client registered only for the device grant (and refresh_token) has neither, and MAS
  // registers it; so when a registration names no response_types and no authorization_code
  // grant, it gets none. extraClientMetadata's validator runs on the client's metadata before
  // the checks; its property is a placeholder no client sends.
  extraClientMetadata: {
    properties: ['x_mxauth_unused'],
    validator(ctx, _key, _value, metadata) {
      const body = ctx?.oidc?.body;
      if (body && body.response_types === undefined && !metadata.grant_types?.includes('authorization_code')) {
        metadata.response_types = [];
      }
    },
  },
  findAccount: async (_ctx, sub) => (Object.hasOwn(users, sub)
    ? { accountId: sub, claims: async () => ({ sub }) }
    : undefined),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('Error', Object.entries(out).map(([k, v]) => `<p>${esc(k)}: ${esc(v)}</p>`).join(''));
  },
});

// The Matrix scopes are not a fixed list: a client picks its device ID and asks for
// urn:matrix:client:device:<id>. oidc-provider keeps only the scopes of its static list
// (configuration.scopes, a Set it clones at start-up) in the scope it grants and puts in
// codes and tokens: OIDCContext.requestParamOIDCScopes filters the request's scope through
// that Set. This getter is the one place that filter is applied, so it is replaced by one that
// keeps what the list holds (the API scope, and openid, which oidc-provider always adds) and
// any well-formed device scope.
Object.defineProperty(provider.OIDCContext.prototype, 'requestParamOIDCScopes', {
  get() {
    return new Set(this.params.scope?.split(' ').filter((s) => s === 'openid' || isMatrixScope(s)));
  },
});

provider.use(async (ctx, next) => {
  await next();
  if (ctx.state.ended) await Promise.all(ctx.state.ended); // before the client hears back
  const { route, entities } = ctx.oidc ?? {};
  if (route === 'introspection' && ctx.body?.active && entities.AccessToken) {
    used.add(entities.AccessToken.jti); // the homeserver saw it: it was used
  }
  if (route === 'token' && ctx.status === 200 && entities.RotatedRefreshToken) {
    rotated(entities.RotatedRefreshToken.jti, entities.RefreshToken.jti, entities.AccessToken.jti);
  }
  if (route === 'device_authorization' && ctx.status === 200 && deviceInterval > 0) {
    ctx.body = { ...ctx.body, interval: deviceInterval };
  }
});

// rotated links a redeemed refresh token to the pair its redemption issued. Redeemed again
// before that pair was used (mas mode), the earlier, never-used pair is dropped.
function rotated(oldId, rtId, atId) {
  const prev = rotations.get(oldId);
  if (prev) {
    drop(key('RefreshToken', prev.rt));
    drop(key('AccessToken', prev.at));
  }
  rotations.set(oldId, { rt: rtId, at: atId });
}

// sessionEnded tells the homeserver (OIDC_NOTIFY_URL) which devices a revoked grant had.
async function sessionEnded(grantId) {
  const owner = grantOwners.get(grantId);
  if (!notifyURL || !owner) return;
  for (const sc of owner.scope.split(' ').filter((x) => DEVICE_SCOPE.test(x))) {
    const body = JSON.stringify({ sub: owner.sub, device_id: sc.slice('urn:matrix:client:device:'.length) });
    try {
      await fetch(notifyURL, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body });
    } catch (err) {
      console.error('notifying the end of a session:', err.message);
    }
  }
}

provider.on('grant.revoked', (ctx, grantId) => {
  ctx.state.ended ??= [];
  ctx.state.ended.push(sessionEnded(grantId));
});

// Refusals and failures go to standard error, which the test harness keeps as the server's
// log, with the detail oidc-provider does not send to clients.
provider.on('server_error', (_ctx, err) => console.error('server_error', err));
for (const event of ['grant.error', 'introspection.error', 'revocation.error', 'registration_create.error',
  'device_authorization.error', 'authorization.error', 'code_verification.error', 'discovery.error']) {
  provider.on(event, (_ctx, err) => console.error(event, err.error, err.error_description ?? '', err.error_detail ?? ''));
}

// ---- pages: sign-in and consent for interactions, and the device flow's pages ----

function esc(v) {
  return String(v).replace(/[&<>"']/gu, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>${esc(title)}</title></head>\n`
    + `<body><h1>${esc(title)}</h1>\n${body}\n</body></html>\n`;
}

async function userCodeInputSource(ctx, form, _out, err) {
  let problem = '';
  if (err?.name === 'AbortedError') {
    problem = '<p class="problem">The sign-in was denied.</p>';
  } else if (err) {
    problem = '<p class="problem">The code is not valid; try again.</p>';
  }
  ctx.body = page('Link a device', `${problem}<p>Enter the code shown on your device.</p>\n${form}\n`
    + '<button type="submit" form="op.deviceInputForm">Continue</button>');
}

async function userCodeConfirmSource(ctx, form, client, _deviceInfo, userCode) {
  ctx.body = page('Confirm the device', `<p>${esc(client.clientName || client.clientId)} shows the code `
    + `<code>${esc(userCode)}</code>.</p>\n${form}\n<button type="submit" form="op.deviceConfirmForm">Continue</button>`);
}

async function successSource(ctx) {
  ctx.body = page('Signed in', '<p>You may return to your device.</p>');
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) throw new Error('interaction mismatch');
  const { prompt, params, session } = details;
  if (req.method === 'GET') {
    if (prompt.name === 'login') {
      return html(res, 200, page('Sign in', `<form method="post" action="/interaction/${esc(uid)}/login">\n`
        + '<label>Username <input type="text" name="username"></label>\n'
        + '<label>Password <input type="password" name="password"></label>\n'
        + '<input type="submit" value="Sign in">\n</form>'));
    }
    const scope = params.scope ?? '';
    return html(res, 200, page('Allow access?', `<p>Client ${esc(params.client_id)} asks for ${esc(scope)} `
      + `as ${esc(session?.accountId ?? '')}.</p>\n`
      + `<form method="post" action="/interaction/${esc(uid)}/confirm"><input type="submit" value="Allow"></form>\n`
      + `<form method="post" action="/interaction/${esc(uid)}/abort"><input type="submit" value="Deny"></form>`));
  }
  const form = querystring.parse(await readBody(req));
  if (action === 'login' && prompt.name === 'login') {
    const name = String(form.username ?? '');
    if (!Object.hasOwn(users, name) || users[name] !== String(form.password ?? '')) {
      return html(res, 403, page('Sign in', '<p class="problem">Invalid username or password</p>'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: name } }, { mergeWithLastSubmission: false });
  }
  if (action === 'confirm' && prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details.missingOIDCScope;
    if (missing) grant.addOIDCScope(missing.join(' '));
    const grantId = await grant.save();
    return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied', error_description: 'The user denied the request',
    }, { mergeWithLastSubmission: false });
  }
  return html(res, 400, page('Invalid request', '<p>This step does not fit the sign-in.</p>'));
}

function html(res, status, body) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
  res.end(body);
}

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const c of req) {
    size += c.length;
    if (size > 64 * 1024) throw new Error('body too large');
    chunks.push(c);
  }
  return Buffer.concat(chunks).toString();
}

// ---- the account page: the user's devices, and signing one out ----
//
// oidc-provider has no account management of its own. Matrix clients send a user here to sign
// another device out (action=org.matrix.device_delete&device_id=...): that revokes every grant
// whose tokens carry that device's scope. It has its own sign-in, kept in its own cookie.

const accountSessions = new Map(); // cookie value -> user name

function accountUser(req) {
  const m = /(?:^|;\s*)mxauth_account=([A-Za-z0-9_-]+)/u.exec(req.headers.cookie ?? '');
  return m ? accountSessions.get(m[1]) : undefined;
}

// deviceGrants maps each device ID of user to the grants its live tokens belong to.
function deviceGrants(user) {
  const out = new Map();
  for (const [k, e] of store) {
    if (!/^(AccessToken|RefreshToken):/u.test(k) || e.payload.accountId !== user || !live(k)) continue;
    for (const sc of (e.payload.scope ?? '').split(' ')) {
      if (DEVICE_SCOPE.test(sc)) {
        const id = sc.slice('urn:matrix:client:device:'.length);
        if (!out.has(id)) out.set(id, new Set());
        out.get(id).add(e.payload.grantId);
      }
    }
  }
  return out;
}

function revokeGrant(grantId) {
  for (const k of [...(grants.get(grantId) ?? [])]) drop(k);
  grants.delete(grantId);
  drop(key('Grant', grantId));
}

async function account(req, res, url) {
  const form = req.method === 'POST' ? querystring.parse(await readBody(req)) : {};
  if (url.pathname === '/account/login') {
    const name = String(form.username ?? '');
    const next = String(form.next ?? '/account');
    if (!Object.hasOwn(users, name) || users[name] !== String(form.password ?? '')) {
      return html(res, 403, page('Sign in', '<p class="problem">Invalid username or password</p>'));
    }
    const id = crypto.randomBytes(24).toString('base64url');
    accountSessions.set(id, name);
    res.writeHead(303, {
      'Set-Cookie': `mxauth_account=${id}; Path=/account; HttpOnly; SameSite=Lax`,
      Location: next.startsWith('/account') ? next : '/account',
    });
    return res.end();
  }
  const user = accountUser(req);
  if (!user) {
    return html(res, 200, page('Sign in', '<form method="post" action="/account/login">\n'
      + `<input type="hidden" name="next" value="${esc(url.pathname + url.search)}">\n`
      + '<label>Username <input type="text" name="username"></label>\n'
      + '<label>Password <input type="password" name="password"></label>\n'
      + '<input type="submit" value="Sign in">\n</form>'));
  }
  const params = req.method === 'POST' ? form : Object.fromEntries(url.searchParams);
  const devices = deviceGrants(user);
  if (params.action === 'org.matrix.device_delete') {
    const id = String(params.device_id ?? '');
    if (!devices.has(id)) return html(res, 404, page('Sign out a device', '<p class="problem">No such device</p>'));
    if (req.method === 'GET') {
      return html(res, 200, page('Sign out a device', `<p>Sign out device ${esc(id)}?</p>\n`
        + '<form id="account.confirm" method="post" action="/account">'
        + '<input type="hidden" name="action" value="org.matrix.device_delete">'
        + `<input type="hidden" name="device_id" value="${esc(id)}">`
        + '<input type="submit" value="Sign out"></form>'));
    }
    for (const grantId of devices.get(id)) {
      revokeGrant(grantId);
      await sessionEnded(grantId);
    }
    return html(res, 200, page('Sign out a device', `<p>Device ${esc(id)} has been signed out.</p>`));
  }
  const list = [...devices.keys()].sort().map((id) => `<li>Device ${esc(id)}</li>`).join('');
  return html(res, 200, page(`Account ${user}`, `<ul>${list}</ul>`));
}

const callback = provider.callback();
const server = http.createServer((req, res) => {
  const url = new URL(req.url, issuer);
  const fail = (err) => {
    if (!res.headersSent) html(res, 400, page('Invalid request', `<p>${esc(err.message)}</p>`));
  };
  if (url.pathname === '/account' || url.pathname === '/account/login') {
    account(req, res, url).catch(fail);
    return undefined;
  }
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/u.exec(url.pathname);
  if (!m) return callback(req, res);
  interaction(req, res, m[1], m[2]).catch(fail);
  return undefined;
});

server.listen(Number(env('OIDC_PORT', '0')), '127.0.0.1', () => {
  process.stdout.write(`listening 127.0.0.1:${server.address().port}\n`);
});

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();

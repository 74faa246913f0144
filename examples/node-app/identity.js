// How the app knows who is calling, and how it calls the product back.
//
// realmhook verifies the host's Connect JWT on every request and forwards it
// with X-Realmhook-Identity, a short-lived JWT signed with the gateway's
// identitySecret. That token is the only thing the app trusts: realmhook
// removes every X-Realmhook-* header a client sends, and nothing else in the
// request says who the tenant is.
const jwt = require('jsonwebtoken');

const IDENTITY_HEADER = 'X-Realmhook-Identity';

// verifyIdentity returns the token's claims ({sub: clientKey, realm, user,
// context, frozen, iat, exp, jti}) or throws when it is missing, forged or
// expired.
function verifyIdentity(token, secret) {
  if (!token) throw new Error('no identity token');
  const claims = jwt.verify(token, secret, {
    algorithms: ['HS256'], // never the token's own choice
    issuer: 'realmhook',
    clockTolerance: 5, // seconds of skew between realmhook's clock and ours
  });
  if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('identity token has no sub');
  return claims;
}

// requireIdentity is Express middleware: req.identity is the verified claims,
// or the request is answered 401 and goes no further.
function requireIdentity(secret) {
  return (req, res, next) => {
    try {
      req.identity = verifyIdentity(req.get(IDENTITY_HEADER), secret);
    } catch (err) {
      res.status(401).json({ error: 'unauthorized', message: 'a valid X-Realmhook-Identity token is required' });
      return;
    }
    next();
  };
}

// egressToken is the bearer token for one call to the product through
// realmhook's egress listener: realmhook checks it, then signs the call with
// the tenant's shared secret, which the app never holds. realmhook refuses a
// token that lives longer than 60 s.
function egressToken(secret, clientKey) {
  return jwt.sign({}, secret, {
    algorithm: 'HS256',
    audience: 'realmhook-egress',
    subject: clientKey,
    expiresIn: 30,
  });
}

module.exports = { IDENTITY_HEADER, verifyIdentity, requireIdentity, egressToken };

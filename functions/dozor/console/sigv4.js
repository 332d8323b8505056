// AWS Signature Version 4 in the browser (WebCrypto), for calls to the API the console is served by.
//
// The request is signed as botocore's SigV4Auth signs it for the service execute-api: the canonical
// URI is the path as sent, each segment encoded again (RFC 3986); the query pairs are sorted as
// sent; the signed headers are host, x-amz-date and, with temporary credentials, the session token.
// The secret never leaves this page: it keys the HMAC chain and is kept in sessionStorage only.

const encoder = new TextEncoder();

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256(text) {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

async function hmac(key, text) {
  const raw = typeof key === "string" ? encoder.encode(key) : key;
  const imported = await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await crypto.subtle.sign("HMAC", imported, encoder.encode(text)));
}

// encodeURIComponent leaves !'()* alone; RFC 3986 (and AWS) encode them.
export function rfc3986(text) {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());
}

// "/v1/console/orders/o 1" from ["v1", "console", "orders", "o 1"], each segment encoded.
export function pathOf(segments) {
  return "/" + segments.map(rfc3986).join("/");
}

export function queryOf(params) {
  return Object.entries(params)
    .filter(([, value]) => value !== undefined && value !== null && value !== "")
    .map(([name, value]) => `${rfc3986(name)}=${rfc3986(String(value))}`)
    .join("&");
}

function canonicalQuery(query) {
  if (!query) return "";
  const pairs = query.split("&").map((pair) => {
    const at = pair.indexOf("=");
    return at < 0 ? [pair, ""] : [pair.slice(0, at), pair.slice(at + 1)];
  });
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

// The headers that make `method path?query` with `body` acceptable to an AWS_IAM route.
export async function sign({ method, path, query, body, host, region, credentials, now = new Date() }) {
  const stamp = now.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
  const day = stamp.slice(0, 8);
  const headers = { host, "x-amz-date": stamp };
  if (credentials.sessionToken) headers["x-amz-security-token"] = credentials.sessionToken;
  const names = Object.keys(headers).sort();
  const canonical = [
    method.toUpperCase(),
    path.split("/").map((segment) => rfc3986(decodeURIComponent(segment))).map((s) => s.replace(/%/g, "%25")).join("/"),
    canonicalQuery(query),
    names.map((name) => `${name}:${String(headers[name]).trim()}`).join("\n") + "\n",
    names.join(";"),
    await sha256(body || ""),
  ].join("\n");
  const scope = `${day}/${region}/execute-api/aws4_request`;
  const toSign = ["AWS4-HMAC-SHA256", stamp, scope, await sha256(canonical)].join("\n");
  let key = await hmac("AWS4" + credentials.secretAccessKey, day);
  for (const part of [region, "execute-api", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  const signed = {
    "x-amz-date": stamp,
    authorization:
      `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${scope}, ` +
      `SignedHeaders=${names.join(";")}, Signature=${signature}`,
  };
  if (credentials.sessionToken) signed["x-amz-security-token"] = credentials.sessionToken;
  return signed;
}

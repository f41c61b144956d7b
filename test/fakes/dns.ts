/**
 * DNS records made at run time for sender-authentication tests, served through mailauth's `resolver`
 * hook (never real DNS): SPF and DMARC TXT records, and DKIM keys generated with node:crypto whose
 * public half is published as `<selector>._domainkey.<domain>`.
 */
import { generateKeyPairSync } from 'node:crypto';
import { dkimSign } from 'mailauth';

export class FakeDns {
  readonly #txt = new Map<string, string[]>();
  /** Names to answer with a temporary failure (SERVFAIL). */
  readonly failing = new Set<string>();

  txt(name: string, value: string): this {
    this.#txt.set(name.toLowerCase(), [...(this.#txt.get(name.toLowerCase()) ?? []), value]);
    return this;
  }

  spf(domain: string, record: string): this {
    return this.txt(domain, record);
  }

  dmarc(domain: string, record = 'v=DMARC1; p=reject'): this {
    return this.txt(`_dmarc.${domain}`, record);
  }

  /** A fresh RSA key for `domain`; the public key is published, the private key returned (PEM). */
  dkimKey(domain: string, selector = 'sel1'): string {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const p = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    this.txt(`${selector}._domainkey.${domain}`, `v=DKIM1; k=rsa; p=${p}`);
    return privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }

  /** The `resolver` function mailauth calls, shaped like `dns.promises.resolve`. */
  readonly resolver = async (name: string, rrtype: string): Promise<string[][]> => {
    const key = name.toLowerCase();
    if (this.failing.has(key))
      throw Object.assign(new Error(`queryTxt ESERVFAIL ${name}`), { code: 'ESERVFAIL' });
    const values = rrtype === 'TXT' ? this.#txt.get(key) : undefined;
    if (!values) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return values.map((v) => [v]);
  };
}

/** `raw` with a DKIM-Signature for `domain` prepended (mailauth's signer, relaxed/relaxed rsa-sha256). */
export async function dkimSigned(
  raw: string,
  domain: string,
  privateKey: string,
  selector = 'sel1',
): Promise<string> {
  // mailauth reads `signatureData` (its README); its bundled typings ask for the fields at the top level.
  const options = { signatureData: [{ signingDomain: domain, selector, privateKey }] };
  const result = await dkimSign(raw, options as unknown as Parameters<typeof dkimSign>[1]);
  if (result.errors.length > 0) throw new Error(`DKIM signing failed: ${JSON.stringify(result.errors)}`);
  return result.signatures + raw;
}

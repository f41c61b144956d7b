/** The one helper used from mailauth's internals (pinned version): DMARC identifier alignment (RFC 7489 §3.1). */
declare module 'mailauth/lib/tools.js' {
  /** The first entry of `domains` whose organizational domain is the one of `fromDomain`, else false. */
  export function getAlignment(
    fromDomain: string,
    domains: ReadonlyArray<string | { domain: string }>,
    strict?: boolean,
  ): { domain: string } | false;
}

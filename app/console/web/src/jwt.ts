// Reads the claims of the signed-in token for display and for choosing where to start
// (the token's jurisdiction). Never trusted for permissions: the node verifies the
// signature and decides every call.

export interface Claims {
  sub?: string;
  role?: string;
  jurisdiction?: string;
  department?: string;
  exp?: number;
}

function b64urlDecode(s: string): string {
  const pad = s.length % 4 === 0 ? "" : "=".repeat(4 - (s.length % 4));
  const bin = atob(s.replace(/-/g, "+").replace(/_/g, "/") + pad);
  const bytes = Uint8Array.from(bin, (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// null when the text is not shaped like a JWT (three base64url parts, a JSON payload).
export function decodeClaims(token: string): Claims | null {
  const parts = token.trim().split(".");
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) return null;
  try {
    const payload = JSON.parse(b64urlDecode(parts[1])) as unknown;
    if (typeof payload !== "object" || payload === null) return null;
    const p = payload as Record<string, unknown>;
    return {
      sub: typeof p.sub === "string" ? p.sub : undefined,
      role: typeof p.role === "string" ? p.role : undefined,
      jurisdiction: typeof p.jurisdiction === "string" ? p.jurisdiction : undefined,
      department: typeof p.department === "string" ? p.department : undefined,
      exp: typeof p.exp === "number" ? p.exp : undefined,
    };
  } catch {
    return null;
  }
}

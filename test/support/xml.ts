// A minimal XML reader for asserting on Sandesh documents: elements, attributes and text
// (no comments, CDATA or DTDs, which Sandesh never produces). It throws on anything
// malformed, so parsing is itself a well-formedness check.

export interface XmlNode {
  name: string;
  attrs: Record<string, string>;
  children: XmlNode[];
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (m, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number(e.slice(1)));
    const c = ENTITIES[e];
    if (c === undefined) throw new Error(`unknown entity ${m}`);
    return c;
  });
}

export function parseXml(doc: string): XmlNode {
  const token = /<\?[^>]*\?>|<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+\s*=\s*"[^"<]*")*)\s*(\/?)>|([^<]+)|(<)/gy;
  const root: XmlNode = { name: '#document', attrs: {}, children: [], text: '' };
  const stack: XmlNode[] = [root];
  while (token.lastIndex < doc.length) {
    const m = token.exec(doc);
    if (!m) throw new Error(`malformed markup at ${token.lastIndex}`);
    const [, close, name, attrText, selfClose, text, stray] = m;
    const top = stack[stack.length - 1]!;
    if (stray) throw new Error(`malformed markup at ${m.index}: ${doc.slice(m.index, m.index + 40)}`);
    if (text !== undefined) {
      if (stack.length === 1 && text.trim()) throw new Error(`text outside the root element: ${text.slice(0, 40)}`);
      top.text += decode(text);
    } else if (name && close) {
      if (top.name !== name) throw new Error(`</${name}> closes <${top.name}>`);
      stack.pop();
    } else if (name) {
      const attrs: Record<string, string> = {};
      for (const a of (attrText ?? '').matchAll(/([\w:.-]+)\s*=\s*"([^"]*)"/g)) attrs[a[1]!] = decode(a[2]!);
      const node: XmlNode = { name, attrs, children: [], text: '' };
      top.children.push(node);
      if (!selfClose) stack.push(node);
    }
  }
  if (stack.length !== 1) throw new Error(`unclosed <${stack[stack.length - 1]!.name}>`);
  if (root.children.length !== 1) throw new Error(`${root.children.length} root elements`);
  return root.children[0]!;
}

/** Descendants (depth first, document order) named `name`. */
export function all(node: XmlNode, name: string): XmlNode[] {
  const out: XmlNode[] = [];
  const walk = (n: XmlNode) => {
    for (const c of n.children) {
      if (c.name === name) out.push(c);
      walk(c);
    }
  };
  walk(node);
  return out;
}

/** The child at a slash-separated path of element names ("nh/NhSandeshData/type"). */
export function at(node: XmlNode, path: string): XmlNode {
  let n = node;
  for (const step of path.split('/')) {
    const next = n.children.find((c) => c.name === step);
    if (!next) throw new Error(`<${n.name}> has no <${step}> (path ${path})`);
    n = next;
  }
  return n;
}

/** The text of the child at `path`. */
export const textAt = (node: XmlNode, path: string): string => at(node, path).text;

/** Elements without element children (in Sandesh, all but list <element>s carry a `type`). */
export function leaves(node: XmlNode): XmlNode[] {
  return node.children.length === 0 ? [node] : node.children.flatMap(leaves);
}

/**
 * Online log template mining with a fixed-depth parse tree, after Drain (He, Zhu, Zheng, Lyu:
 * "Drain: An Online Log Parsing Approach with Fixed Depth Tree", ICWS 2017).
 *
 * A message is masked (variables the masks recognise become `<*>`), split on whitespace, and
 * routed down the tree: first by its source (each source has its own subtree; a source name is
 * never wildcarded), then by its token count, then by its first `depth - 2` tokens (a token
 * with a digit, or a node that already has `maxChildren` children, goes down the `<*>` branch).
 * The leaf holds candidate groups; the message joins the most similar one (the share of
 * positions where its token equals the group's template token, `<*>` positions not counted)
 * when that share reaches `similarity`, and the template's differing positions become `<*>`.
 * Otherwise it starts a new group.
 *
 * Bounded: at most `maxClusters` groups; past that the least recently seen group is evicted
 * (and reported to the caller), as Drain3 does with its LRU cache; and at most `maxLeafClusters`
 * in one leaf, so a message is compared with a bounded number of groups. Tree nodes are removed
 * with their last group.
 */

import { MessageMasker } from './masks.ts';

export const WILDCARD = '<*>';

export interface DrainOptions {
  /** Tree depth including the root and the length layer (Drain's "depth"); at least 3. */
  depth: number;
  /** Share of equal tokens for a message to join a group (Drain's "st"). */
  similarity: number;
  /** Children per inner node before the rest go down the `<*>` branch. */
  maxChildren: number;
  /** Groups kept; the least recently seen is evicted past this. */
  maxClusters: number;
  /**
   * Groups per leaf; past it the leaf's least recently seen group is evicted. Bounds the work per
   * message when many unrelated messages share a leaf (the <*> branch of a crowded node).
   */
  maxLeafClusters?: number;
  /** Applied in order; every match becomes `<*>`. Must be global (`g`) regexes. */
  masks: readonly RegExp[];
}

export class Cluster {
  readonly source: string;
  /** Template tokens; `<*>` where the messages differ. */
  tokens: string[];
  /** Messages that joined this group. */
  size = 0;
  /** Set by the tree; the caller may keep its own data here. */
  template: string;
  /** Insertion-ordered LRU links, maintained by Drain. */
  prev: Cluster | null = null;
  next: Cluster | null = null;
  /** The leaf that holds the group. */
  leaf: Leaf;
  /** The caller's own data about the group (counts, times). */
  meta: unknown = undefined;

  constructor(source: string, tokens: string[], leaf: Leaf) {
    this.source = source;
    this.tokens = tokens;
    this.template = tokens.join(' ');
    this.leaf = leaf;
  }
}

interface Node {
  children: Map<string, Node> | null;
  clusters: Cluster[] | null;
  parent: Node | null;
  key: string;
}

type Leaf = Node & { clusters: Cluster[] };

export interface AddResult {
  cluster: Cluster;
  /** The message started a new group. */
  created: boolean;
  /** The group's template changed (a position became `<*>`). */
  changed: boolean;
  /** A group evicted to stay within maxClusters, if any. */
  evicted: Cluster | null;
}

const HAS_DIGIT = /\d/;

export class Drain {
  private readonly options: DrainOptions;
  private readonly masker: MessageMasker;
  private readonly root: Node = { children: new Map(), clusters: null, parent: null, key: '' };
  private count = 0;
  /** Least recently seen first. */
  private head: Cluster | null = null;
  private tail: Cluster | null = null;

  constructor(options: DrainOptions) {
    if (options.depth < 3) throw new Error('Drain depth must be at least 3');
    this.options = options;
    this.masker = new MessageMasker(options.masks);
  }

  get size(): number {
    return this.count;
  }

  /** The masked tokens of a message, as the tree sees them. */
  tokenize(message: string): string[] {
    return this.masker.tokenize(message);
  }

  /** Learns from one message of `source`; returns the group it joined or started. */
  add(source: string, message: string): AddResult {
    return this.addTokens(source, this.tokenize(message));
  }

  addTokens(source: string, tokens: string[]): AddResult {
    const leaf = this.leafFor(source, tokens, true) as Leaf;
    const match = bestMatch(leaf.clusters, tokens, this.options.similarity);
    if (match !== null) {
      const changed = mergeInto(match, tokens);
      this.touch(match);
      // the leaf keeps its groups least recently seen first too
      const list = leaf.clusters;
      if (list[list.length - 1] !== match) {
        list.splice(list.indexOf(match), 1);
        list.push(match);
      }
      match.size++;
      return { cluster: match, created: false, changed, evicted: null };
    }
    // a full leaf gives up its least recently seen group first
    const leafFull = leaf.clusters.length >= (this.options.maxLeafClusters ?? Infinity) ? leaf.clusters[0] : null;
    const cluster = new Cluster(source, tokens.slice(), leaf);
    cluster.size = 1;
    leaf.clusters.push(cluster);
    this.append(cluster);
    this.count++;
    const evicted = leafFull !== null ? this.evict(leafFull) : this.count > this.options.maxClusters ? this.evictOldest() : null;
    return { cluster, created: true, changed: false, evicted };
  }

  /**
   * Puts back a group known from before (a restart), its template as it was, as the most
   * recently seen; returns it and the group evicted to make room, if any.
   */
  restore(source: string, template: string, size: number): { cluster: Cluster; evicted: Cluster | null } {
    const tokens = template.split(' ').filter((t) => t !== '');
    const leaf = this.leafFor(source, tokens, true) as Leaf;
    for (const c of leaf.clusters) if (c.template === template) return { cluster: c, evicted: null };
    const cluster = new Cluster(source, tokens, leaf);
    cluster.size = size;
    leaf.clusters.push(cluster);
    this.append(cluster);
    this.count++;
    const evicted = this.count > this.options.maxClusters ? this.evictOldest() : null;
    return { cluster, evicted };
  }

  /** Every group, least recently seen first. */
  *clusters(): IterableIterator<Cluster> {
    for (let c = this.head; c !== null; c = c.next) yield c;
  }

  private leafFor(source: string, tokens: string[], create: boolean): Node | null {
    const o = this.options;
    let sourceNode = this.root.children!.get(source);
    if (sourceNode === undefined) {
      if (!create) return null;
      sourceNode = { children: new Map(), clusters: null, parent: this.root, key: source };
      this.root.children!.set(source, sourceNode);
    }
    let node: Node = sourceNode;
    const lengthKey = String(tokens.length);
    let next = node.children!.get(lengthKey);
    if (next === undefined) {
      if (!create) return null;
      next = { children: new Map(), clusters: null, parent: node, key: lengthKey };
      node.children!.set(lengthKey, next);
    }
    node = next;
    const inner = Math.min(o.depth - 2, tokens.length);
    for (let i = 0; i < inner; i++) {
      const token = tokens[i];
      const children: Map<string, Node> = node.children!;
      let child: Node | undefined = children.get(token);
      if (child === undefined) {
        const key = HAS_DIGIT.test(token) || children.size >= o.maxChildren - (children.has(WILDCARD) ? 0 : 1) ? WILDCARD : token;
        child = children.get(key);
        if (child === undefined) {
          if (!create) return null;
          child = { children: new Map(), clusters: null, parent: node, key };
          children.set(key, child);
        }
      }
      node = child;
    }
    if (node.clusters === null) {
      if (!create) return null;
      node.clusters = [];
    }
    return node;
  }

  private append(c: Cluster): void {
    c.prev = this.tail;
    c.next = null;
    if (this.tail !== null) this.tail.next = c;
    else this.head = c;
    this.tail = c;
  }

  private unlink(c: Cluster): void {
    if (c.prev !== null) c.prev.next = c.next;
    else this.head = c.next;
    if (c.next !== null) c.next.prev = c.prev;
    else this.tail = c.prev;
    c.prev = c.next = null;
  }

  private touch(c: Cluster): void {
    if (this.tail === c) return;
    this.unlink(c);
    this.append(c);
  }

  private evictOldest(): Cluster | null {
    return this.head === null ? null : this.evict(this.head);
  }

  private evict(c: Cluster): Cluster {
    this.unlink(c);
    this.count--;
    const leaf = c.leaf;
    const i = leaf.clusters.indexOf(c);
    if (i >= 0) leaf.clusters.splice(i, 1);
    // remove nodes left empty, up to the root
    let node: Node | null = leaf;
    if (leaf.clusters.length === 0) leaf.clusters = null as unknown as Cluster[];
    while (node !== null && node.parent !== null && (node.clusters === null || node.clusters.length === 0) && (node.children === null || node.children.size === 0)) {
      node.parent.children!.delete(node.key);
      node = node.parent;
    }
    return c;
  }
}

/**
 * The group most similar to `tokens`: the share of positions where the template token equals
 * the message token (a `<*>` position counts when the message has `<*>` there too: the mask
 * already said it varies), ties to the template with more `<*>`, then to the earlier group.
 * Null when the best share is below `threshold`.
 */
function bestMatch(clusters: Cluster[], tokens: string[], threshold: number): Cluster | null {
  let best: Cluster | null = null;
  let bestSim = -1;
  let bestParams = -1;
  for (let k = 0; k < clusters.length; k++) {
    const c = clusters[k];
    const template = c.tokens;
    let same = 0;
    let params = 0;
    for (let i = 0; i < template.length; i++) {
      const t = template[i];
      if (t === WILDCARD) {
        params++;
        if (tokens[i] === WILDCARD) same++;
      } else if (t === tokens[i]) {
        same++;
      }
    }
    const sim = template.length === 0 ? 1 : same / template.length;
    if (sim > bestSim || (sim === bestSim && params > bestParams)) {
      best = c;
      bestSim = sim;
      bestParams = params;
    }
  }
  return best !== null && bestSim >= threshold ? best : null;
}

/** Makes the positions where `tokens` differ `<*>`; true when the template changed. */
function mergeInto(c: Cluster, tokens: string[]): boolean {
  let changed = false;
  const t = c.tokens;
  for (let i = 0; i < t.length; i++) {
    if (t[i] !== WILDCARD && t[i] !== tokens[i]) {
      t[i] = WILDCARD;
      changed = true;
    }
  }
  if (changed) c.template = t.join(' ');
  return changed;
}

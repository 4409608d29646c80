/**
 * Reading the docs' markdown for the docs tests: code spans, the table under a
 * heading, and the keys of a zod object schema those tables must list.
 */
import { expect } from 'chai';
import { z } from 'zod';

/** Every `code span` of a markdown text. */
export function codeSpans(md: string): Set<string> {
  return new Set([...md.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!));
}

/** The rows (cells) of the first table after `heading`, before the next heading of the same or a higher level. */
export function firstTable(md: string, heading: string): string[][] {
  const lines = md.split('\n');
  const start = lines.indexOf(heading);
  expect(start, `heading "${heading}"`).to.be.greaterThan(-1);
  const level = /^#+/.exec(heading)![0].length;
  const rows: string[][] = [];
  for (const line of lines.slice(start + 1)) {
    const h = /^(#+) /.exec(line);
    if (h && h[1]!.length <= level) break;
    if (line.startsWith('|')) rows.push(line.split('|').slice(1, -1).map((c) => c.trim()));
    else if (rows.length > 0) break;
  }
  expect(rows.length, `a table under "${heading}"`).to.be.greaterThan(2);
  return rows.slice(2); // header and separator
}

/** The key of a row: its first cell, written as `key`. */
export function rowKey(row: string[]): string {
  return /^`([^`]+)`$/.exec(row[0]!)?.[1] ?? row[0]!;
}

/** The schema inside `.default()` and `.optional()` wrappers. */
export function unwrapped(schema: unknown): unknown {
  let s = schema;
  while (s instanceof z.ZodDefault || s instanceof z.ZodOptional) s = s.unwrap();
  return s;
}

/** The keys of a (possibly defaulted or optional) object schema. */
export function shapeOf(schema: unknown): Record<string, z.ZodType> {
  const s = unwrapped(schema);
  if (!(s instanceof z.ZodObject)) throw new Error('expected an object schema');
  return s.shape as Record<string, z.ZodType>;
}

/**
 * Charts as server-rendered SVG (no script, nothing inline the CSP would refuse: colours are SVG
 * presentation attributes, not style). Each chart is a <figure> whose SVG has role="img", a <title>
 * and a <desc>, and whose numbers are also printed as text, so a screen reader, a printout and
 * pdftotext all read the same values.
 */
import type { ComponentChildren } from 'preact';

/** Colour-blind-safe (Okabe–Ito), dark enough for white text and AA against white. */
export const PALETTE = [
  '#0072b2',
  '#d55e00',
  '#009e73',
  '#cc79a7',
  '#8a6d00',
  '#56539b',
  '#a2142f',
  '#3b3b3b',
];

export interface Bar {
  label: string;
  value: number;
  /** What is printed at the bar's end (the value by default). */
  text?: string;
}

const ROW = 26;
const LABEL_W = 200;
const BAR_W = 360;
const WIDTH = LABEL_W + BAR_W + 120;

/** Cuts a label to fit its column (the whole label stays in the SVG's <title> per bar). */
function clip(label: string, max = 28): string {
  return label.length > max ? `${label.slice(0, max - 1)}…` : label;
}

function Figure(props: {
  id: string;
  title: string;
  desc: string;
  children: ComponentChildren;
  empty: boolean;
}) {
  return (
    <figure class="chart" aria-labelledby={`${props.id}-t`}>
      <h2 id={`${props.id}-t`}>{props.title}</h2>
      {props.empty ? <p class="meta">None in this period.</p> : props.children}
      <figcaption class="meta">{props.desc}</figcaption>
    </figure>
  );
}

/** Horizontal bars, one row each. */
export function BarChart(props: { id: string; title: string; desc: string; bars: Bar[]; colour?: string }) {
  const max = Math.max(1, ...props.bars.map((b) => b.value));
  const height = props.bars.length * ROW + 8;
  return (
    <Figure id={props.id} title={props.title} desc={props.desc} empty={props.bars.length === 0}>
      <svg
        role="img"
        aria-labelledby={`${props.id}-st ${props.id}-sd`}
        viewBox={`0 0 ${WIDTH} ${height}`}
        width="100%"
        preserveAspectRatio="xMinYMin meet"
      >
        <title id={`${props.id}-st`}>{props.title}</title>
        <desc id={`${props.id}-sd`}>
          {props.bars.map((b) => `${b.label}: ${b.text ?? b.value}`).join('; ')}
        </desc>
        {props.bars.map((b, i) => {
          const y = i * ROW + 4;
          const w = Math.max(b.value > 0 ? 2 : 0, Math.round((b.value / max) * BAR_W));
          return (
            <g key={`${b.label}-${i}`}>
              <text x="0" y={y + 17} font-size="14" fill="#1d1d1b">
                {clip(b.label)}
              </text>
              <rect x={LABEL_W} y={y} width={w} height={ROW - 6} fill={props.colour ?? PALETTE[0]}>
                <title>{`${b.label}: ${b.text ?? b.value}`}</title>
              </rect>
              <text x={LABEL_W + w + 6} y={y + 17} font-size="14" fill="#1d1d1b">
                {b.text ?? String(b.value)}
              </text>
            </g>
          );
        })}
      </svg>
    </Figure>
  );
}

export interface Stack {
  label: string;
  parts: { series: string; value: number }[];
}

/** Horizontal stacked bars (one row per group, one colour per series) with a legend. */
export function StackedChart(props: { id: string; title: string; desc: string; stacks: Stack[] }) {
  const series = [...new Set(props.stacks.flatMap((s) => s.parts.map((p) => p.series)))].sort();
  const colour = (name: string) => PALETTE[series.indexOf(name) % PALETTE.length]!;
  const total = (s: Stack) => s.parts.reduce((sum, p) => sum + p.value, 0);
  const max = Math.max(1, ...props.stacks.map(total));
  const legendRows = Math.ceil(series.length / 3);
  const top = legendRows * ROW + 8;
  const height = top + props.stacks.length * ROW + 8;
  return (
    <Figure id={props.id} title={props.title} desc={props.desc} empty={props.stacks.length === 0}>
      <svg
        role="img"
        aria-labelledby={`${props.id}-st ${props.id}-sd`}
        viewBox={`0 0 ${WIDTH} ${height}`}
        width="100%"
        preserveAspectRatio="xMinYMin meet"
      >
        <title id={`${props.id}-st`}>{props.title}</title>
        <desc id={`${props.id}-sd`}>
          {props.stacks
            .map((s) => `${s.label}: ${s.parts.map((p) => `${p.series} ${p.value}`).join(', ')}`)
            .join('; ')}
        </desc>
        {series.map((name, i) => {
          const x = (i % 3) * 226;
          const y = Math.floor(i / 3) * ROW + 4;
          return (
            <g key={`legend-${name}`}>
              <rect x={x} y={y} width="16" height="16" fill={colour(name)} />
              <text x={x + 22} y={y + 13} font-size="14" fill="#1d1d1b">
                {clip(name, 24)}
              </text>
            </g>
          );
        })}
        {props.stacks.map((s, i) => {
          const y = top + i * ROW;
          let x = LABEL_W;
          return (
            <g key={s.label}>
              <text x="0" y={y + 17} font-size="14" fill="#1d1d1b">
                {clip(s.label)}
              </text>
              {s.parts.map((p) => {
                const w = Math.round((p.value / max) * BAR_W);
                const rect = (
                  <rect key={p.series} x={x} y={y} width={w} height={ROW - 6} fill={colour(p.series)}>
                    <title>{`${s.label}, ${p.series}: ${p.value}`}</title>
                  </rect>
                );
                x += w;
                return rect;
              })}
              <text x={x + 6} y={y + 17} font-size="14" fill="#1d1d1b">
                {String(total(s))}
              </text>
            </g>
          );
        })}
      </svg>
    </Figure>
  );
}

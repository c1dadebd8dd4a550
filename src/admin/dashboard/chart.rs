//! Server-drawn SVG charts: a stacked bar chart (one bar per time bucket, one stack segment per
//! series) in the Okabe–Ito colour-blind-safe palette, with the same figures as a semantic table
//! beside it. Hand-built with the page's template (maud) rather than `plotters`: the chart is a
//! few dozen `<rect>`s, and plotters' SVG backend would add a font stack and inline `style`
//! attributes that the page's CSP (`style-src 'self'`) refuses.

use maud::{Markup, html};

/// Okabe–Ito (2008), black last; series past the palette share the last colour as "others".
pub const PALETTE: [&str; 8] = [
    "#E69F00", "#56B4E9", "#009E73", "#0072B2", "#D55E00", "#CC79A7", "#F0E442", "#000000",
];

/// One stacked series: its name and a count per bucket.
#[derive(Debug, Clone)]
pub struct Stack {
    /// Legend text (a vendor).
    pub name: String,
    /// Counts, one per bucket.
    pub counts: Vec<u64>,
}

/// Folds series past the palette into one "other vendors" series, largest first.
pub fn fold(mut stacks: Vec<Stack>) -> Vec<Stack> {
    stacks.sort_by(|a, b| {
        let (ta, tb): (u64, u64) = (a.counts.iter().sum(), b.counts.iter().sum());
        tb.cmp(&ta).then_with(|| a.name.cmp(&b.name))
    });
    if stacks.len() <= PALETTE.len() {
        return stacks;
    }
    let rest = stacks.split_off(PALETTE.len() - 1);
    let n = rest.first().map_or(0, |s| s.counts.len());
    let mut other = Stack {
        name: format!("{} other vendors", rest.len()),
        counts: vec![0; n],
    };
    for s in rest {
        for (o, c) in other.counts.iter_mut().zip(s.counts) {
            *o += c;
        }
    }
    stacks.push(other);
    stacks
}

const W: f64 = 720.0;
const H: f64 = 200.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;

/// The chart: `labels` names each bucket (for tooltips and the axis), `stacks` are already folded.
pub fn stacked(title: &str, labels: &[String], stacks: &[Stack]) -> Markup {
    let n = labels.len().max(1);
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            stacks
                .iter()
                .map(|s| s.counts.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_h = H - BOTTOM - 8.0;
    let slot = (W - LEFT) / n as f64;
    let bar = (slot * 0.8).max(1.0);
    let y_of = |v: u64| 8.0 + plot_h - plot_h * v as f64 / max as f64;
    let ticks = [0, max / 2, max];
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-label=(title)
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            @for t in ticks {
                line x1=(LEFT) x2=(W) y1=(y_of(t)) y2=(y_of(t)) stroke="#bbbbbb" stroke-width="1" {}
                text x=(LEFT - 6.0) y=(y_of(t) + 4.0) text-anchor="end" font-size="11" fill="#333333" { (t) }
            }
            @if let (Some(first), Some(last)) = (labels.first(), labels.last()) {
                text x=(LEFT) y=(H - 6.0) font-size="11" fill="#333333" { (first) }
                text x=(W) y=(H - 6.0) text-anchor="end" font-size="11" fill="#333333" { (last) }
            }
            @for (si, s) in stacks.iter().enumerate() {
                g class="series" data-series=(s.name) fill=(PALETTE[si.min(PALETTE.len() - 1)]) {
                    @for (i, c) in s.counts.iter().enumerate() {
                        @if *c > 0 {
                            @let below: u64 = stacks[..si].iter().map(|p| p.counts.get(i).copied().unwrap_or(0)).sum();
                            @let y = y_of(below + c);
                            rect x=(format!("{:.1}", LEFT + slot * i as f64 + (slot - bar) / 2.0))
                                y=(format!("{y:.1}"))
                                width=(format!("{bar:.1}"))
                                height=(format!("{:.1}", y_of(below) - y)) {
                                title { (s.name) ", " (labels.get(i).map_or("", String::as_str)) ": " (c) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The legend: a colour swatch and name per series.
pub fn legend(stacks: &[Stack]) -> Markup {
    html! {
        ul class="legend" {
            @for (si, s) in stacks.iter().enumerate() {
                li {
                    svg class="swatch" viewBox="0 0 10 10" aria-hidden="true" xmlns="http://www.w3.org/2000/svg" {
                        rect width="10" height="10" fill=(PALETTE[si.min(PALETTE.len() - 1)]) {}
                    }
                    " " (s.name) " (" (s.counts.iter().sum::<u64>()) ")"
                }
            }
        }
    }
}

/// The chart's figures as a table (non-empty buckets only).
pub fn table(caption: &str, labels: &[String], stacks: &[Stack]) -> Markup {
    html! {
        table class="data" {
            caption { (caption) }
            thead { tr { th scope="col" { "Time (UTC)" } @for s in stacks { th scope="col" { (s.name) } } } }
            tbody {
                @for (i, l) in labels.iter().enumerate() {
                    @if stacks.iter().any(|s| s.counts.get(i).copied().unwrap_or(0) > 0) {
                        tr { th scope="row" { (l) } @for s in stacks { td { (s.counts.get(i).copied().unwrap_or(0)) } } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stacks_fold_past_the_palette_and_draw_one_group_each() {
        let stacks: Vec<Stack> = (0..10)
            .map(|i| Stack {
                name: format!("v{i}"),
                counts: vec![i, 1],
            })
            .collect();
        let f = fold(stacks);
        assert_eq!(f.len(), PALETTE.len());
        assert_eq!(f[0].name, "v9");
        assert_eq!(f[7].name, "3 other vendors");
        assert_eq!(f[7].counts, vec![3, 3]);
        let svg = stacked("t", &["a".into(), "b".into()], &f).into_string();
        assert_eq!(svg.matches("class=\"series\"").count(), PALETTE.len());
        assert!(!svg.contains("style="), "the CSP refuses inline styles");
    }
}

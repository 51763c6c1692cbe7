//! What kubectl prints for HPAs, shared by the Kubernetes controller's and the local
//! runtime's views of autoscalers: ages (`duration.HumanDuration`) and the table layout
//! (`text/tabwriter` as `kubectl get` sets it up).
use jiff::SignedDuration;

/// `duration.HumanDuration`, as kubectl's AGE column.
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if secs < -1 {
        return "<invalid>".into();
    }
    if secs < 0 {
        return "0s".into();
    }
    let (s, m, h) = (secs, secs / 60, secs / 3600);
    if s < 60 * 2 {
        return format!("{s}s");
    }
    if m < 10 {
        let rs = s % 60;
        return if rs == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{rs}s")
        };
    }
    if m < 60 * 3 {
        return format!("{m}m");
    }
    if h < 8 {
        let rm = m % 60;
        return if rm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{rm}m")
        };
    }
    if h < 48 {
        return format!("{h}h");
    }
    if h < 24 * 8 {
        let (d, rh) = (h / 24, h % 24);
        return if rh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{rh}h")
        };
    }
    if h < 24 * 365 * 2 {
        return format!("{}d", h / 24);
    }
    if h < 24 * 365 * 8 {
        let (y, rd) = (h / 24 / 365, (h / 24) % 365);
        return if rd == 0 {
            format!("{y}y")
        } else {
            format!("{y}y{rd}d")
        };
    }
    format!("{}y", h / 24 / 365)
}

/// Columns padded to their widest cell plus `pad` spaces (`kubectl get` uses 3,
/// `kubectl describe` 2), each line starting with `indent`; trailing blanks trimmed.
pub fn table(rows: &[Vec<String>], indent: &str, pad: usize) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = indent.to_owned();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < r.len() {
                let pad = widths[c] + pad - cell.chars().count();
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

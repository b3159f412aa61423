//! A port of Go's `text/tabwriter` (left-aligned, space padding), which kubectl uses for both
//! `get` tables (min width 6, padding 3, widths remembered across flushes for `-w`) and
//! `describe` (min width 0, padding 2). Using the same algorithm gives the same layout.
//!
//! Text is a sequence of lines; a line is a sequence of tab-terminated cells plus a trailing
//! cell. A column block is a run of consecutive lines that all have a tab-terminated cell in
//! that column; the column is as wide as the widest cell of its block plus padding.

/// Buffers text and lays it out on [`TabWriter::flush`].
#[derive(Debug, Clone)]
pub struct TabWriter {
    min_width: usize,
    padding: usize,
    remember_widths: bool,
    remembered: Vec<usize>,
    buf: String,
}

impl TabWriter {
    pub fn new(min_width: usize, padding: usize) -> Self {
        Self { min_width, padding, remember_widths: false, remembered: Vec::new(), buf: String::new() }
    }

    /// kubectl's table writer: min width 6, padding 3, widths remembered across flushes.
    pub fn for_tables() -> Self {
        let mut tw = Self::new(6, 3);
        tw.remember_widths = true;
        tw
    }

    /// kubectl's describe writer: min width 0, padding 2.
    pub fn for_describe() -> Self {
        Self::new(0, 2)
    }

    pub fn write_str(&mut self, s: &str) {
        self.buf.push_str(s);
    }

    /// Lays out everything written since the last flush.
    pub fn flush(&mut self) -> String {
        let text = std::mem::take(&mut self.buf);
        let mut raw_lines: Vec<&str> = text.split('\n').collect();
        let terminated_last = text.ends_with('\n');
        if terminated_last || text.is_empty() {
            raw_lines.pop();
        }
        let lines: Vec<Vec<&str>> = raw_lines.iter().map(|l| l.split('\t').collect()).collect();
        let mut out = String::with_capacity(text.len() * 2);
        let mut widths = Vec::new();
        self.format(&lines, 0, lines.len(), &mut widths, &mut out);
        if !terminated_last && out.ends_with('\n') {
            out.pop();
        }
        out
    }

    fn format(
        &mut self,
        lines: &[Vec<&str>],
        mut line0: usize,
        line1: usize,
        widths: &mut Vec<usize>,
        out: &mut String,
    ) {
        let column = widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= lines[this].len() {
                this += 1;
                continue;
            }
            // A block of lines with a cell in this column starts here.
            write_lines(lines, line0, this, widths, out);
            line0 = this;
            let mut width = self.min_width;
            while this < line1 {
                let line = &lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].chars().count() + self.padding);
                this += 1;
            }
            if self.remember_widths {
                if self.remembered.len() < widths.len() {
                    let from = self.remembered.len();
                    self.remembered.extend_from_slice(&widths[from..]);
                }
                match self.remembered.get_mut(column) {
                    None => self.remembered.push(width),
                    Some(w) if *w > width => width = *w,
                    Some(w) => *w = width,
                }
            }
            widths.push(width);
            self.format(lines, line0, this, widths, out);
            widths.pop();
            line0 = this;
        }
        write_lines(lines, line0, line1, widths, out);
    }
}

fn write_lines(lines: &[Vec<&str>], line0: usize, line1: usize, widths: &[usize], out: &mut String) {
    for line in &lines[line0..line1] {
        for (j, cell) in line.iter().enumerate() {
            out.push_str(cell);
            if let Some(&w) = widths.get(j)
                && j + 1 < line.len()
            {
                let len = cell.chars().count();
                out.extend(std::iter::repeat_n(' ', w.saturating_sub(len)));
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn aligns_like_kubectl_get() {
        let mut tw = TabWriter::for_tables();
        tw.write_str("NAME\tSTATUS\tAGE\n");
        tw.write_str("default\tActive\t10d\n");
        tw.write_str("kube-system\tActive\t10d\n");
        assert_eq!(
            tw.flush(),
            "NAME          STATUS   AGE\n\
             default       Active   10d\n\
             kube-system   Active   10d\n"
        );
    }

    #[test]
    fn min_width_applies() {
        let mut tw = TabWriter::for_tables();
        tw.write_str("A\tB\n1\t2\n");
        assert_eq!(tw.flush(), "A     B\n1     2\n");
    }

    #[test]
    fn remembers_widths_across_flushes() {
        let mut tw = TabWriter::for_tables();
        tw.write_str("NAME\tAGE\nlong-name-here\t1s\n");
        let first = tw.flush();
        assert_eq!(first, "NAME             AGE\nlong-name-here   1s\n");
        tw.write_str("x\t2s\n");
        assert_eq!(tw.flush(), "x                2s\n");
    }

    #[test]
    fn blocks_break_on_lines_without_tabs() {
        let mut tw = TabWriter::for_describe();
        tw.write_str("Name:\tfoo\nNamespace:\tbar\nSpec:\n  Replicas:\t3\n  A Long Field Name:\tx\n");
        assert_eq!(
            tw.flush(),
            "Name:       foo\n\
             Namespace:  bar\n\
             Spec:\n  \
             Replicas:           3\n  \
             A Long Field Name:  x\n"
        );
    }

    #[test]
    fn unterminated_last_line_is_kept() {
        let mut tw = TabWriter::new(0, 1);
        tw.write_str("a\tb\nccc\td");
        assert_eq!(tw.flush(), "a   b\nccc d");
    }
}

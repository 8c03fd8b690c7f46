//! The interned strings, frames and stacks a trace's records refer to.

use super::*;

/// A frame resolved against the trace's string table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Function name.
    pub function: String,
    /// Source file, if known.
    pub file: Option<String>,
    /// Source line (0 = unknown).
    pub line: u32,
    /// Source column (0 = unknown).
    pub column: u32,
    /// Function index in the original module.
    pub func_index: u32,
    /// Code offset of the call in the original module.
    pub code_offset: u32,
}

impl Frame {
    /// `function (file:line)`, or just the function when there is no file.
    pub fn display(&self) -> String {
        match (&self.file, self.line) {
            (Some(f), 0) => format!("{} ({f})", self.function),
            (Some(f), l) => format!("{} ({f}:{l})", self.function),
            (None, _) => self.function.clone(),
        }
    }
}

/// The interned strings, frames and stack nodes of a trace, and the one
/// rule for their ids: a string's or a frame's id is its position among the
/// trace's string or frame records (from 0), a stack's its position among
/// its stack records (from 1; 0 is the empty stack). The reader fills them
/// as it reads; the collector's recorder fills them as it writes, so both
/// sides resolve an id the same way. Memory grows with distinct strings,
/// frames and stacks, never with events.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    strings: Vec<String>,
    frames: Vec<Frame>,
    /// (parent, frame) per stack id - 1.
    stacks: Vec<(StackId, u32)>,
    /// Frames per stack id - 1 (its depth).
    depths: Vec<u32>,
}

/// Frames of a stack that views keep, innermost first: a deeper stack
/// (a recursion thousands of levels deep) is cut to its innermost
/// `MAX_STACK_FRAMES`, and the views say how many outer frames they left
/// out. It bounds every view's cost per stack, as Valgrind's
/// `--num-callers` does.
pub const MAX_STACK_FRAMES: usize = 128;

impl Tables {
    /// Add a string; returns its id.
    pub fn add_string(&mut self, s: String) -> u32 {
        self.strings.push(s);
        self.strings.len() as u32 - 1
    }

    /// Add a frame; returns its id.
    pub fn add_frame(&mut self, f: Frame) -> u32 {
        self.frames.push(f);
        self.frames.len() as u32 - 1
    }

    /// Add a stack node: `frame` called from stack `parent`; returns its id,
    /// or `None` when the parent or the frame does not exist yet.
    pub fn add_stack(&mut self, parent: StackId, frame: u32) -> Option<StackId> {
        if parent as usize > self.stacks.len() || frame as usize >= self.frames.len() {
            return None;
        }
        self.stacks.push((parent, frame));
        self.depths.push(self.depth(parent).saturating_add(1));
        Some(self.stacks.len() as StackId)
    }

    /// Frames in stack `id` (0 for the empty stack or an unknown id).
    pub fn depth(&self, id: StackId) -> u32 {
        (id as usize)
            .checked_sub(1)
            .and_then(|i| self.depths.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// Outer frames of stack `id` that [`Tables::stack`] leaves out.
    pub fn omitted(&self, id: StackId) -> u32 {
        self.depth(id).saturating_sub(MAX_STACK_FRAMES as u32)
    }

    /// Strings so far: the next string's id.
    pub fn strings(&self) -> u32 {
        self.strings.len() as u32
    }

    /// Frames so far: the next frame's id.
    pub fn frames(&self) -> u32 {
        self.frames.len() as u32
    }

    /// Stacks so far: the last stack's id.
    pub fn stacks(&self) -> StackId {
        self.stacks.len() as StackId
    }

    /// A string by id.
    pub fn string(&self, id: u32) -> Option<&str> {
        self.strings.get(id as usize).map(String::as_str)
    }

    /// A frame by id.
    pub fn frame(&self, id: u32) -> Option<&Frame> {
        self.frames.get(id as usize)
    }

    /// The frame ids of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`] ([`Tables::omitted`] says how many more).
    pub fn stack_frames(&self, mut id: StackId) -> Vec<u32> {
        let mut out = Vec::new();
        while id != 0 && out.len() < MAX_STACK_FRAMES {
            let Some(&(parent, frame)) = self.stacks.get(id as usize - 1) else {
                break;
            };
            out.push(frame);
            id = parent;
        }
        out.reverse();
        out
    }

    /// The frames of a stack, outermost first: at most its innermost
    /// [`MAX_STACK_FRAMES`] ([`Tables::omitted`] says how many more).
    pub fn stack(&self, id: StackId) -> Vec<&Frame> {
        self.stack_frames(id)
            .into_iter()
            .filter_map(|f| self.frame(f))
            .collect()
    }
}

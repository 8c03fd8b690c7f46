//! Opening a file named by untrusted input (a module's source map, a
//! session): without waiting on it. A path checked to be a regular file
//! may be replaced by a FIFO before it is opened, and opening a FIFO for
//! reading waits for a writer; opened non-blocking, it returns at once, and
//! the caller checks what was opened (`File::metadata`) before reading.
//! On a regular file the flag changes nothing.

use std::fs::File;
use std::io;
use std::path::Path;

/// Open `path` for reading without blocking on a FIFO or a device.
pub(crate) fn open_without_waiting(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
}

namespace ChronoGuard;

/// <summary>
/// A failed file operation as one plain line naming the file. Under NativeAOT the runtime's exception
/// messages are resource keys (<c>IO_FileNotFound_FileName</c>, …: UseSystemResourceKeys), so the words
/// come from the exception's type and errno, never from the runtime's message; exceptions our own code
/// throws (a plain <see cref="IOException"/> or <see cref="InvalidDataException"/> with a sentence) keep theirs.
/// </summary>
internal static class IoErrors
{
    /// <summary>The HResult of <c>new IOException(message)</c>; the runtime's errno failures carry the errno instead.</summary>
    private const int CorEIo = unchecked((int)0x80131620);

    /// <summary>Whether <paramref name="ex"/> is a failure of a file, directory or stream operation.</summary>
    public static bool IsIo(Exception ex) =>
        ex is IOException or InvalidDataException or UnauthorizedAccessException or System.Security.SecurityException or NotSupportedException or ArgumentException;

    /// <summary>Thrown by our own code with a sentence that already names the file.</summary>
    public static bool IsOwn(Exception ex) =>
        (ex.GetType() == typeof(InvalidDataException) || (ex.GetType() == typeof(IOException) && ex.HResult == CorEIo))
        && !LooksLikeResourceKey(ex.Message);

    /// <summary>"PATH: PROBLEM", or our own sentence when it is one.</summary>
    public static string Line(string path, Exception ex) =>
        IsOwn(ex) ? ex.Message.ReplaceLineEndings(" ") : $"{path}: {Problem(ex, path)}";

    /// <summary>What went wrong with <paramref name="path"/>, in plain words.</summary>
    /// <param name="path">The file the operation was on, to tell a directory from a missing file; null when unknown.</param>
    public static string Problem(Exception ex, string? path) => ex switch
    {
        FileNotFoundException => path is not null && Directory.Exists(path) ? "is a directory, not a file" : "no such file",
        DirectoryNotFoundException => path is not null && MissingDirectory(path) is { } missing ? missing : "a directory on its path does not exist",
        UnauthorizedAccessException => path is not null && Directory.Exists(path) ? "is a directory, not a file" : "permission denied",
        PathTooLongException => "the path is too long",
        IOException io when IsOwn(io) => io.Message.ReplaceLineEndings(" "),
        IOException { HResult: 20 } when path is not null && MissingDirectory(path) is { } notDirectory => notDirectory,
        IOException io => Errno(io.HResult),
        System.Security.SecurityException => "permission denied",
        NotSupportedException or ArgumentException => "not a usable path",
        _ => $"an unexpected {ex.GetType().Name}",
    };

    private static string Errno(int errno) => errno switch
    {
        5 => "input/output error on the device",
        11 => "locked by another process",
        13 or 1 => "permission denied",
        16 or 26 => "the file is busy",
        17 => "already exists",
        20 => "a part of its path is not a directory",
        21 => "is a directory, not a file",
        23 => "the system has no file descriptors left",
        24 => "this process has no file descriptors left (RLIMIT_NOFILE)",
        27 => "the file is too large",
        28 => "no space left on the device",
        30 => "the file system is read-only",
        32 => "the reading end was closed (broken pipe)",
        40 => "too many levels of symbolic links",
        122 => "the disk quota is exceeded",
        > 0 and < 4096 => $"an I/O error (errno {errno})",
        _ => "an I/O error",
    };

    /// <summary>Why a directory could not be created (Directory.CreateDirectory failed on <paramref name="directory"/>).</summary>
    public static string CreateDirectoryProblem(string directory, Exception ex) =>
        MissingDirectory(Path.Combine(directory, "x")) is { } missing && missing.Contains(" is a file", StringComparison.Ordinal)
            ? missing
            : ex is FileNotFoundException or DirectoryNotFoundException ? "the file system does not allow a directory there" : Problem(ex, null);

    /// <summary>"D is a file, not a directory" or "the directory D does not exist", for the nearest such ancestor of <paramref name="path"/>.</summary>
    private static string? MissingDirectory(string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        string? missing = null;
        while (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir))
        {
            if (File.Exists(dir))
            {
                return $"{dir} is a file, not a directory";
            }

            missing = dir;
            dir = Path.GetDirectoryName(dir);
        }

        // The path itself, when it is the directory that was asked for.
        return missing is not null ? $"the directory {missing} does not exist" : Directory.Exists(full) ? null : $"the directory {full} does not exist";
    }

    /// <summary>A runtime message that is only its resource key, as NativeAOT leaves it ("IO_PathNotFound_Path, /x").</summary>
    private static bool LooksLikeResourceKey(string message)
    {
        var end = message.IndexOfAny([',', ' ']);
        var word = end < 0 ? message : message[..end];
        return word.Contains('_', StringComparison.Ordinal) && (end < 0 || message[end] == ',');
    }
}

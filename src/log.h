/* One-line, levelled logging for the daemons: "2026-11-24T21:56:46.123Z INFO agent: ...".
 * Each line is formatted on the caller's stack and written with one write(2), so lines from the
 * inference thread and the loop thread never interleave. Prompt text is never logged here unless
 * the request asked for it (Request.log_prompt); callers check that. */
#ifndef EF_LOG_H
#define EF_LOG_H

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 } log_level;

/* Name printed after the level ("agent", "coordinator"); the string must outlive all logging. */
void log_set_component(const char *component);
void log_set_level(log_level level);
log_level log_get_level(void);
/* "debug", "info", "warn", "error", "off" -> 0, or EF_EINVAL. */
int log_parse_level(const char *name, log_level *out);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif

/* SPDX-License-Identifier: MIT */
/*
 * mangen: fills the man pages' lists from the tables the programs use, so
 * a page cannot name an option, key or field the code does not have, nor
 * miss one. It copies a page (roff) from stdin to stdout, replaces
 * @name@ by the value of a name=value argument (make passes the
 * configured paths; an @name@ without one is an error), and each line
 *
 *   @GENERATE options@         the user's --vm-* options (vmenv(7))
 *   @GENERATE config@          vmmd.conf's keys (vmmd.conf(5))
 *   @GENERATE policy-fields@   the fields of a policy (vmenv-policy(5))
 *
 * with roff. An unknown @GENERATE line is an error: a page must not ship
 * with a hole in it. Runs at build time only; never installed.
 */
#include "cleanup.h"
#include "vmspec.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../vmmd/vmmdconf.h"

/* Text for a roff line: a backslash printed as such, every '-' a minus
 * (options and paths stay copyable), and no control line by accident. */
static void roff(FILE *f, const char *s)
{
	if (*s == '.' || *s == '\'')
		fputs("\\&", f);
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

/* ".br\nPolicy field: \fBx\fR.\n" for the fields an option sets. */
static void gen_option_fields(FILE *f, const char *option)
{
	int n = 0;

	for (int i = 0; i < VMSPEC_NFIELDS; i++) {
		const struct vmspec_field_info *fi = vmspec_field(i);

		if (!fi->option || strcmp(fi->option, option) != 0)
			continue;
		fputs(n++ ? ", \\fB" : ".br\nPolicy field: \\fB", f);
		roff(f, fi->name);
		fputs("\\fR", f);
	}
	if (n)
		fputs(".\n", f);
}

static void gen_options(FILE *f)
{
	static const char *const prefixes[] = {"SBATCH_", "SALLOC_", "SLURM_"};

	for (int o = 0; o < VMSPEC_NOPTS; o++) {
		const struct vmspec_option *vo = vmspec_option(o);
		char env[96];

		fputs(".TP\n\\fB\\-\\-", f);
		roff(f, vo->name);
		fputs(vo->optional_arg ? "\\fR[=\\fI" : "\\fR=\\fI", f);
		roff(f, vo->arg);
		fputs(vo->optional_arg ? "\\fR]\n" : "\\fR\n", f);
		roff(f, vo->help);
		fputs("\n.br\nEnvironment: ", f);
		for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++) {
			vmspec_option_env(o, prefixes[i], env, sizeof(env));
			fprintf(f, "%s\\fB%s\\fR", i ? ", " : "", env);
		}
		fputs(".\n", f);
		gen_option_fields(f, vo->name);
	}
}

static void gen_config(FILE *f)
{
	const char *key, *def, *help;
	char values[128];

	for (size_t i = 0;
	     (key = config_key_doc(i, &def, &help, values, sizeof(values)));
	     i++) {
		fputs(".TP\n\\fB", f);
		roff(f, key);
		/* The table's help is a phrase: a sentence here. */
		fprintf(f, "\\fR\n%c", toupper((unsigned char)*help));
		roff(f, help + 1);
		fputs(".\n.br\nValue: ", f);
		roff(f, values);
		fputs("; default: ", f);
		if (*def) {
			fputs("\\fB", f);
			roff(f, def);
			fputs("\\fR", f);
		} else {
			fputs("empty", f);
		}
		fputs(".\n", f);
	}
}

static void field_values(FILE *f, const struct vmspec_field_info *fi)
{
	switch (fi->kind) {
	case VMSPEC_K_BOOL:
		fputs("true or false", f);
		break;
	case VMSPEC_K_U32:
		fprintf(f, "an integer, 0..%u", fi->limit);
		break;
	case VMSPEC_K_ENUM:
		for (size_t i = 0; fi->choices[i]; i++)
			fprintf(f, "%s\\fB%s\\fR", i ? ", " : "one of ",
				fi->choices[i]);
		break;
	case VMSPEC_K_STR:
		fputs("a string; \\fBallow\\fR takes glob patterns", f);
		break;
	case VMSPEC_K_PATH:
		fputs("an absolute path; \\fBallow\\fR takes path prefixes", f);
		break;
	case VMSPEC_K_MOUNTS:
		fprintf(f,
			"a list of \\fISRC\\fB:\\fIDST\\fR[\\fB:ro\\fR] "
			"mounts, at most %u; \\fBallow\\fR takes path "
			"prefixes",
			fi->limit);
		break;
	}
}

static void gen_policy_fields(FILE *f)
{
	struct vmspec def;
	char val[256];

	vmspec_defaults(&def);
	for (int i = 0; i < VMSPEC_NFIELDS; i++) {
		const struct vmspec_field_info *fi = vmspec_field(i);

		fputs(".TP\n\\fB", f);
		roff(f, fi->name);
		fputs("\\fR\n", f);
		if (fi->option) {
			fputs("Option: \\fB\\-\\-", f);
			roff(f, fi->option);
			fputs("\\fR. ", f);
		} else {
			fputs("Policy only. ", f);
		}
		fputs("Value: ", f);
		field_values(f, fi);
		/* As a policy writes it: JSON's true and false. */
		if (fi->kind == VMSPEC_K_BOOL)
			snprintf(val, sizeof(val), "%s",
				 vmspec_get_num(&def.v, i) ? "true" : "false");
		else
			vmspec_format_field(&def.v, i, val, sizeof(val));
		fputs(". Built\\-in default: ", f);
		if (*val) {
			fputs("\\fB", f);
			roff(f, val);
			fputs("\\fR", f);
		} else {
			fputs("empty", f);
		}
		fputs(fi->closed ? ". Closed: a user's value needs a policy "
				   "that allows it.\n"
				 : ".\n",
		      f);
	}
}

static const struct {
	const char *name;
	void (*gen)(FILE *f);
} sections[] = {
    {"options", gen_options},
    {"config", gen_config},
    {"policy-fields", gen_policy_fields},
};

static int generate(const char *line, FILE *out)
{
	const char *name = line + strlen("@GENERATE ");
	size_t n = strcspn(name, "@");

	for (size_t i = 0; i < ARRAY_SIZE(sections); i++) {
		if (strlen(sections[i].name) == n &&
		    strncmp(sections[i].name, name, n) == 0) {
			sections[i].gen(out);
			return 0;
		}
	}
	fprintf(stderr, "mangen: unknown section in '%.*s'\n",
		(int)strcspn(line, "\n"), line);
	return -1;
}

/* name=value arguments: @name@ in a page stands for value. */
static int substitute(const char *line, int nvars, char **vars, FILE *out)
{
	static const char name_chars[] = "abcdefghijklmnopqrstuvwxyz"
					 "ABCDEFGHIJKLMNOPQRSTUVWXYZ_";
	const char *p = line;

	while (*p) {
		const char *end = *p == '@' ? strchr(p + 1, '@') : NULL;
		size_t n = end ? (size_t)(end - p - 1) : 0;
		int i;

		if (n == 0 || strspn(p + 1, name_chars) != n) {
			fputc(*p++, out);
			continue;
		}
		for (i = 0; i < nvars; i++)
			if (strncmp(vars[i], p + 1, n) == 0 &&
			    vars[i][n] == '=')
				break;
		if (i == nvars) {
			fprintf(stderr, "mangen: no value for @%.*s@\n", (int)n,
				p + 1);
			return -1;
		}
		roff(out, vars[i] + n + 1);
		p = end + 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	char line[4096];

	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "@GENERATE ", 10) == 0
			? generate(line, stdout) < 0
			: substitute(line, argc - 1, argv + 1, stdout) < 0)
			return 1;
	}
	return ferror(stdin) || fflush(stdout) != 0 ? 1 : 0;
}

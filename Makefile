# pingyi - one Makefile for the three programs, their libraries and tests.
#
#   make            build build/pingyi, build/pingyi-collector, build/pingyi-aggregator
#   make run        install missing packages, build, start the demo (demo/run.sh)
#   make test       install missing packages, build with ASan+UBSan, run every test
#   make bench      benchmarks (not part of the tests)
#   make install    PREFIX=/usr/local DESTDIR=
#   make deps       install missing Debian packages (as root) or print the command
#
# SAN=1 builds with AddressSanitizer and UndefinedBehaviorSanitizer into
# build/san; CI=true (set by CI) or WERROR=1 turns warnings into errors.

PREFIX     ?= /usr/local
DESTDIR    ?=
CC         ?= cc
CFLAGS     ?= -O2 -g
LDFLAGS    ?=
PKG_CONFIG ?= pkg-config

SAN ?= 0
ifeq ($(SAN),1)
BUILD    ?= build/san
SANFLAGS  = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
else
BUILD    ?= build
SANFLAGS  =
endif
ifneq ($(filter true 1,$(CI) $(WERROR)),)
WERRFLAG = -Werror
endif

WARN     = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral $(WERRFLAG)
PKGS     = libmicrohttpd sqlite3 libsodium jansson libqrencode libpng xlsxwriter
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
lib      = $(shell $(PKG_CONFIG) --libs $(1) 2>/dev/null)
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) $(SANFLAGS) -I. $(PKG_CFLAGS) $(CFLAGS) -MMD -MP
ALL_LDFLAGS = $(SANFLAGS) $(LDFLAGS)

COMMON_SRC = $(wildcard common/*.c)
FORMS_SRC  = $(wildcard forms/*.c)
QR_SRC     = $(wildcard qr/*.c)
AGG_SRC    = $(filter-out aggregator/main.c,$(wildcard aggregator/*.c))
COL_SRC    = $(wildcard collector/*.c)
CLI_SRC    = $(wildcard cli/*.c)
UNIT_TESTS = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
LIBCOMMON = $(BUILD)/libcommon.a
LIBFORMS  = $(BUILD)/libforms.a
LIBQR     = $(BUILD)/libqr.a
LIBAGG    = $(BUILD)/libagg.a

COL_LIBS = $(call lib,libmicrohttpd sqlite3 libsodium jansson) -lpthread -lm
AGG_LIBS = $(call lib,libmicrohttpd sqlite3 libsodium jansson) -lpthread -lm
CLI_LIBS = $(call lib,sqlite3 libsodium jansson libqrencode libpng xlsxwriter) -lm
TEST_LIBS = $(call lib,cmocka libmicrohttpd sqlite3 libsodium jansson libqrencode libpng xlsxwriter) -lpthread -lm

PROGRAMS = $(BUILD)/pingyi $(BUILD)/pingyi-collector $(BUILD)/pingyi-aggregator

.PHONY: all run test unit-tests bench deps install uninstall clean
all: $(PROGRAMS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/obj/collector/assets.o: collector/assets.S $(wildcard collector/static/*)
	@mkdir -p $(dir $@)
	$(CC) $(SANFLAGS) -c $< -o $@

$(LIBCOMMON): $(call obj,$(COMMON_SRC))
$(LIBFORMS): $(call obj,$(FORMS_SRC))
$(LIBQR): $(call obj,$(QR_SRC))
$(LIBAGG): $(call obj,$(AGG_SRC))
$(BUILD)/%.a:
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/pingyi-collector: $(call obj,$(COL_SRC)) $(BUILD)/obj/collector/assets.o $(LIBFORMS) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(COL_LIBS)

$(BUILD)/pingyi-aggregator: $(call obj,aggregator/main.c) $(LIBAGG) $(LIBFORMS) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(AGG_LIBS)

$(BUILD)/pingyi: $(call obj,$(CLI_SRC)) $(LIBAGG) $(LIBQR) $(LIBFORMS) $(LIBCOMMON)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(CLI_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(BUILD)/obj/tests/unit/fixture.o $(LIBAGG) $(LIBQR) $(LIBFORMS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(TEST_LIBS)

# test_intake drives the collector's intake (collector/intake.c) on its own.
$(BUILD)/tests/test_intake: $(BUILD)/obj/tests/unit/test_intake.o $(BUILD)/obj/tests/unit/fixture.o \
		$(BUILD)/obj/collector/intake.o $(LIBAGG) $(LIBQR) $(LIBFORMS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(TEST_LIBS)

# test_writer runs the writer thread (collector/writer.c) with the intake and
# the checkpoint thread, and plays the loop thread itself.
$(BUILD)/tests/test_writer: $(BUILD)/obj/tests/unit/test_writer.o $(BUILD)/obj/tests/unit/fixture.o \
		$(BUILD)/obj/collector/writer.o $(BUILD)/obj/collector/intake.o $(BUILD)/obj/collector/checkpoint.o \
		$(LIBAGG) $(LIBQR) $(LIBFORMS) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(TEST_LIBS)

unit-tests: $(UNIT_TESTS)

deps:
	@sh tools/deps.sh build

run: deps
	@$(MAKE) --no-print-directory all
	@sh demo/run.sh $(BUILD)

# The tests run against the sanitizer build; prove prints the one summary.
test:
	@sh tools/deps.sh test
	@command -v npm >/dev/null || sh tools/deps.sh npm
	@[ -d tests/browser/node_modules ] || npm ci --prefix tests/browser --no-audit --no-fund
	@$(MAKE) --no-print-directory SAN=1 all unit-tests
	@PINGYI_BIN=$(CURDIR)/build/san CMOCKA_MESSAGE_OUTPUT=TAP \
		prove build/san/tests/test_* tests/integration/*.t

bench: deps all
	@sh tools/deps.sh bench
	@sh bench/run.sh $(BUILD)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/pingyi/forms
	install -m 755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 644 forms/*.form $(DESTDIR)$(PREFIX)/share/pingyi/forms/

uninstall:
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/bin/,pingyi pingyi-collector pingyi-aggregator)
	rm -rf $(DESTDIR)$(PREFIX)/share/pingyi

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)

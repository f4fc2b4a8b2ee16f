// Inverse-cloze pairs (runners/train/inverse_cloze.h): sentence splitting,
// which sentences become queries, the positive with and without the
// sentence, the sibling passages as hard negatives, and the seed.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "datasets/training_pairs.h"
#include "runners/train/inverse_cloze.h"

using namespace embeval;

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const std::string& x : v) s += x;
  return s;
}

data::TrainingPair pair(const std::string& q, const std::string& p, std::vector<std::string> negs, const std::string& kind) {
  return data::TrainingPair{q, p, std::move(negs), kind};
}

}  // namespace

TEST(InverseCloze, SentencesEndAfterTerminatorsAndClosingQuotes) {
  const std::string t = "第一句。第二句！！“引号里的话？”最后没有句号";
  const std::vector<std::string> want = {"第一句。", "第二句！！", "“引号里的话？”", "最后没有句号"};
  EXPECT_EQ(split_sentences(t), want);
  const std::string u = "a!? b;c\n\nd（注：e；）f";
  const std::vector<std::string> want_u = {"a!?", " b;", "c\n\n", "d（注：e；）", "f"};
  EXPECT_EQ(split_sentences(u), want_u);
  EXPECT_TRUE(split_sentences("").empty());
  EXPECT_EQ(split_sentences("没有终止符的一段"), std::vector<std::string>{"没有终止符的一段"});
  for (const std::string& s : {t, u}) EXPECT_EQ(join(split_sentences(s)), s);
}

TEST(InverseCloze, EachLongEnoughSentenceOfEachPassageIsAQuery) {
  const std::string s0 = "北京是中国的首都和政治中心。", s1 = "故宫位于北京市的中心地带。", s2 = "短句。",
                    s3 = "天安门广场是世界上最大的城市广场之一！";
  const std::string A = s0 + s1 + s2 + s3;
  const std::string B = "上海是中国最大的经济城市。黄浦江从城市中间穿过。";
  const std::string C = "广州是华南地区的中心城市。广州的早茶非常有名气。";
  const std::string D = "只有一句话的正文不能拆成问题和上下文";
  const std::vector<data::TrainingPair> in = {
      pair("中国的首都是哪里？", A, {B}, "qa"),
      pair("故宫在哪里？", A, {C}, "qa"),  // the same paragraph for another question
      pair("一个标题", D, {}, "title-content"),
      pair("这是一个很长的复述句子。它有两句话。", "这是另一个很长的复述句子。它也有两句话。", {}, "paraphrase"),
  };
  InverseClozeOptions o;
  o.remove = 1;
  const std::vector<data::TrainingPair> all = inverse_cloze_pairs(in, o);
  // A: s0, s1, s3 (s2 is too short); B and C: two sentences each; D: one sentence; paraphrase ignored.
  ASSERT_EQ(all.size(), 7u);
  EXPECT_EQ(all[0].query, "北京是中国的首都和政治中心。");
  EXPECT_EQ(all[0].positive, s1 + s2 + s3);
  EXPECT_EQ(all[1].query, "故宫位于北京市的中心地带。");
  EXPECT_EQ(all[1].positive, s0 + s2 + s3);
  EXPECT_EQ(all[2].query, "天安门广场是世界上最大的城市广场之一！");
  EXPECT_EQ(all[2].positive, s0 + s1 + s2);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(all[i].negatives, (std::vector<std::string>{B, C}));  // both groups of A
  EXPECT_EQ(all[3].query, "上海是中国最大的经济城市。");
  EXPECT_EQ(all[3].positive, "黄浦江从城市中间穿过。");
  EXPECT_EQ(all[3].negatives, std::vector<std::string>{A});
  EXPECT_EQ(all[5].negatives, std::vector<std::string>{A});
  for (const data::TrainingPair& p : all) EXPECT_EQ(p.kind, "ict");

  o.remove = 0;  // the sentence stays in its passage
  for (const data::TrainingPair& p : inverse_cloze_pairs(in, o))
    EXPECT_TRUE(p.positive == A || p.positive == B || p.positive == C) << p.positive;
  o.min_chars = 14;  // s1 has 13 characters, s0 14
  o.max_chars = 14;
  const std::vector<data::TrainingPair> only = inverse_cloze_pairs(in, o);
  ASSERT_EQ(only.size(), 1u);
  EXPECT_EQ(only[0].query, s0);
  o.max_negatives = 1;
  EXPECT_EQ(inverse_cloze_pairs(in, o)[0].negatives, std::vector<std::string>{B});
  // No passage of two sentences: nothing.
  EXPECT_TRUE(inverse_cloze_pairs({in[2], in[3]}).empty());
}

TEST(InverseCloze, TheSentenceIsRemovedNineTimesInTenAndTheSeedFixesWhich) {
  std::string passage;
  std::vector<std::string> sentences;
  for (int i = 0; i < 400; ++i) {
    sentences.push_back("这是第" + std::to_string(i) + "个足够长的句子。");
    passage += sentences.back();
  }
  const std::vector<data::TrainingPair> in = {pair("问题", passage, {}, "qa")};
  InverseClozeOptions o;
  o.seed = 3;
  const std::vector<data::TrainingPair> a = inverse_cloze_pairs(in, o), b = inverse_cloze_pairs(in, o);
  ASSERT_EQ(a.size(), 400u);
  size_t removed = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].query, sentences[i]);
    EXPECT_EQ(a[i].positive, b[i].positive);
    if (a[i].positive != passage) {
      ++removed;
      EXPECT_EQ(a[i].positive.find(sentences[i]), std::string::npos);
      EXPECT_EQ(a[i].positive.size() + sentences[i].size(), passage.size());
    }
  }
  // Binomial(400, 0.9): mean 360, sd 6; the bounds are 5 sd either side.
  EXPECT_GE(removed, 330u);
  EXPECT_LE(removed, 390u);
  o.seed = 4;
  const std::vector<data::TrainingPair> c = inverse_cloze_pairs(in, o);
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].positive != c[i].positive;
  EXPECT_GT(differ, 0u);
}
